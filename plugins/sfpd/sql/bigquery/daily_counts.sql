-- Rows per incident day as the source would count them: merged plus quarantined. Scans the
-- raw table's incident_date column and the quarantine.
SELECT day, SUM(n) AS n
FROM (
    SELECT incident_date AS day, COUNT(*) AS n
    FROM {{ raw }}
    GROUP BY day
    UNION ALL
    SELECT
        SAFE.PARSE_DATE(
            '%Y-%m-%d', SUBSTR(JSON_VALUE(raw_json, '$.incident_datetime'), 1, 10)
        ) AS day,
        COUNT(DISTINCT raw_json) AS n
    FROM {{ rejects }}
    GROUP BY day
)
WHERE day IS NOT NULL
GROUP BY day;
