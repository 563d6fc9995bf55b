-- What the latest run's loads billed on BigQuery (NULL on DuckDB, which bills nothing): the
-- load_audit rows of the run that wrote last (the report follows its own run's loads; a run
-- that loaded nothing wrote its catch-up's check, which bills nothing).
SELECT
    SUM(bytes_billed) AS bytes_billed,
    SUM(bytes_processed) AS bytes_processed,
    COUNT(bytes_billed) AS loads
FROM {{ audit }}
WHERE run_id = (SELECT run_id FROM {{ audit }} ORDER BY loaded_at DESC LIMIT 1)
