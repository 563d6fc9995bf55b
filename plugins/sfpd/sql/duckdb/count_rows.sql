{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), and in all.
SELECT
{%- if window_start %}
    count(*) FILTER (WHERE {{ s.in_window() }}),
{%- else %}
    0,
{%- endif %}
    count(*)
FROM {{ raw }};
