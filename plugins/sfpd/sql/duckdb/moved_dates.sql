{% import "_scope.sql" as s with context -%}
-- The dates outside the window where the raw table holds staged row_ids now (rows whose date
-- moved upstream): the MERGE's target is those partitions and the window's.
SELECT DISTINCT incident_date
FROM {{ raw }}
WHERE row_id IN (SELECT row_id FROM {{ staging }})
{%- if window_start %}
    AND NOT ({{ s.in_window() }})
{%- endif %}
ORDER BY incident_date;
