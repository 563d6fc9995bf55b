INSERT INTO {{ schema }}.{{ table }}_rejects
SELECT $window_start, $window_end, raw_json, reason, $loaded_at
FROM read_parquet($rejects_file);
