-- A load's quarantined rows replace the earlier ones of the same rows: those of its window's
-- days (whatever load put them there), and any of the row_ids it stages or quarantines now.
DELETE FROM {{ schema }}.{{ table }}_rejects
WHERE json_extract_string(raw_json, '$.row_id') IN (
    SELECT row_id FROM {{ schema }}.{{ staging }}
    UNION ALL
    SELECT json_extract_string(raw_json, '$.row_id') FROM read_parquet($rejects_file)
)
{%- if window %}
    OR (window_start = $window_start AND window_end = $window_end)
    OR TRY_CAST(left(json_extract_string(raw_json, '$.incident_datetime'), 10) AS DATE)
    BETWEEN $window_start AND $window_end - 1
{%- endif %};
