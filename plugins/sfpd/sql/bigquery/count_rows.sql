{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), in all, and stamped with this
-- load's time (what its MERGE inserted or updated). Scans incident_date and _loaded_at.
SELECT
{%- if window_start %}
    COUNTIF({{ s.in_window() }}),
{%- else %}
    0,
{%- endif %}
    COUNT(*),
    COUNTIF(_loaded_at = TIMESTAMP_MICROS({{ loaded_at_us }}))
FROM {{ raw }};
