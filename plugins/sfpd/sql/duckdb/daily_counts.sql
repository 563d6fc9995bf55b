-- Rows per incident day as the source would count them: merged plus quarantined.
SELECT day, sum(n) AS n
FROM (
    SELECT incident_date AS day, count(*) AS n
    FROM {{ raw }}
    GROUP BY day
    UNION ALL
    SELECT
        TRY_CAST(left(json_extract_string(raw_json, '$.incident_datetime'), 10) AS DATE) AS day,
        count(DISTINCT raw_json) AS n
    FROM {{ rejects }}
    GROUP BY day
)
WHERE day IS NOT NULL
GROUP BY day;
