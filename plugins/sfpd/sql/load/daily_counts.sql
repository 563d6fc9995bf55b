{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
-- Rows per incident day as the source would count them: merged plus quarantined. Scans the
-- raw table's incident_date column and the quarantine.
SELECT day, SUM(n) AS n
FROM (
    SELECT incident_date AS day, COUNT(*) AS n
    FROM {{ raw }}
    GROUP BY day
    UNION ALL
    SELECT
        {{ d.date_prefix(d.json_string("raw_json", "$.incident_datetime")) }} AS day,
        COUNT(DISTINCT raw_json) AS n
    FROM {{ rejects }}
    GROUP BY day
)
WHERE day IS NOT NULL
GROUP BY day;
