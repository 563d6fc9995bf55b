{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), in all, and stamped with this
-- load's time (what its MERGE inserted or updated: on the staged rows' dates, `staged`). Reads
-- incident_date and _loaded_at of the window's and the staged dates' partitions; the total is a
-- COUNT(*) without a filter, read from the table's metadata.
SELECT
{%- if window_start %}
    COUNTIF({{ s.in_window() }}),
{%- else %}
    0,
{%- endif %}
    (SELECT COUNT(*) FROM {{ raw }}),
    COUNTIF(
        {{ s.in_dates("incident_date", staged) }}
        AND _loaded_at = TIMESTAMP_MICROS({{ loaded_at_us }})
    )
FROM {{ raw }}
WHERE {% if window_start %}({{ s.in_window() }}) OR {% endif %}{{ s.in_dates("incident_date", staged) }};
