-- Rows of the raw table: in the window (none without one), and in all.
SELECT
{%- if window %}
    count(*) FILTER (WHERE incident_date >= $window_start AND incident_date < $window_end),
{%- else %}
    0,
{%- endif %}
    count(*)
FROM {{ schema }}.{{ table }};
