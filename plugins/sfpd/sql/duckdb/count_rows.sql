{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), in all, and stamped with this
-- load's time (what its MERGE inserted or updated: on the staged rows' dates, `staged`). Reads
-- the window's and the staged dates' rows only, but for the total.
SELECT
{%- if window_start %}
    count(*) FILTER (WHERE {{ s.in_window() }}),
{%- else %}
    0,
{%- endif %}
    (SELECT count(*) FROM {{ raw }}),
    count(*) FILTER (
        WHERE {{ s.in_dates("incident_date", staged) }}
            AND _loaded_at = make_timestamp({{ loaded_at_us }})
    )
FROM {{ raw }}
WHERE {% if window_start %}({{ s.in_window() }}) OR {% endif %}{{ s.in_dates("incident_date", staged) }};
