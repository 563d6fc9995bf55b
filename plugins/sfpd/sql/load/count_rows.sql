{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
{% import "_scope.sql" as s with context -%}
-- Rows of the raw table: in the window (none without one), in all, and stamped with this
-- load's time (what its MERGE inserted or updated: on the staged rows' dates, `staged`). Reads
-- incident_date and _loaded_at of the window's and the staged dates' rows (on BigQuery: their
-- partitions); the total is a COUNT(*) without a filter (BigQuery: from the table's metadata).
SELECT
    {% if ranges %}{{ d.countif(s.in_window()) }}{% else %}0{% endif %},
    (SELECT COUNT(*) FROM {{ raw }}),
    {{ d.countif(
        s.in_dates("incident_date", staged) ~ " AND _loaded_at = " ~ d.timestamp_us(loaded_at_us)
    ) }}
FROM {{ raw }}
WHERE {% if ranges %}({{ s.in_window() }}) OR {% endif %}{{ s.in_dates("incident_date", staged) }};
