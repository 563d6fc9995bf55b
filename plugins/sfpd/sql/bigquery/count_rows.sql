{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), and in all. Scans incident_date.
SELECT
{%- if window_start %}
    COUNTIF({{ s.in_window() }}),
{%- else %}
    0,
{%- endif %}
    COUNT(*)
FROM {{ raw }};
