{% import "_scope.sql" as s with context -%}
-- What the staged rows hold, before anything is merged.
SELECT
    COUNT(*) AS rows_staged,
    COUNT(*) - COUNT(DISTINCT row_id) AS duplicate_row_ids,
    COUNTIF(
{%- if window_start %}
        NOT ({{ s.in_window() }}) OR
{%- endif %}
        DATE(incident_datetime) <> incident_date
    ) AS rows_outside_window
FROM {{ staging }};
