{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), in all, and stamped with this
-- load's time (what its MERGE inserted or updated).
SELECT
{%- if window_start %}
    count(*) FILTER (WHERE {{ s.in_window() }}),
{%- else %}
    0,
{%- endif %}
    count(*),
    count(*) FILTER (WHERE _loaded_at = make_timestamp({{ loaded_at_us }}))
FROM {{ raw }};
