{% import "_scope.sql" as s with context -%}
-- What the staged rows hold, before anything is merged.
SELECT
    count(*) AS rows_staged,
    count(*) - count(DISTINCT row_id) AS duplicate_row_ids,
    count(*) FILTER (
        WHERE
{%- if window_start %}
        NOT ({{ s.in_window() }}) OR
{%- endif %}
        CAST(incident_datetime AS DATE) <> incident_date
    ) AS rows_outside_window
FROM {{ staging }};
