{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
{% import "_scope.sql" as s with context -%}
-- A load's quarantined rows (loaded into rejects staging) replace the earlier ones of the same
-- rows: those of its window's days (whatever load put them there), and any of the row_ids it
-- stages or quarantines now.
DELETE FROM {{ rejects }}
WHERE {{ d.json_string("raw_json", "$.row_id") }} IN (
    SELECT row_id FROM {{ staging }}
    UNION ALL
    SELECT {{ d.json_string("raw_json", "$.row_id") }} FROM {{ rejects_staging }}
)
{%- if window_start %}
    OR (window_start = DATE '{{ window_start }}' AND window_end = DATE '{{ window_end }}')
{%- endif %}
{%- if ranges %}
    OR {{ s.in_window(d.date_prefix(d.json_string("raw_json", "$.incident_datetime"))) }}
{%- endif %};
INSERT INTO {{ rejects }} (window_start, window_end, raw_json, reason, _rejected_at)
SELECT {{ s.window_values() }}, raw_json, reason, {{ d.timestamp_us(loaded_at_us) }}
FROM {{ rejects_staging }};
