{% import "_macros.sql" as m -%}
-- Run only when a table is missing (DDL counts against the table's metadata-update quota).
-- The raw table: one row per offence (row_id), columns from sfpd.schema. Partitioned by the
-- month of the incident date: ~10k rows (~3 MB) a month, ~280 partitions from 2018 to 2040 and
-- ~460 for any history since 2003, where a day's would be ~100 kB each and pass BigQuery's
-- 4,000 partitions a job may modify in 2028. Clustered on the incident date first (a load's
-- statements read a window's days), then what the marts filter and group by.
-- The dataset itself is created through the API (it needs its location).
CREATE TABLE IF NOT EXISTS {{ raw }} (
{{- m.definitions(columns) }},
    _loaded_at TIMESTAMP
)
PARTITION BY DATE_TRUNC(incident_date, MONTH)
CLUSTER BY {{ cluster_by | join(", ") }};
-- The quarantine: rows that could not be normalised, whole, with the reason.
CREATE TABLE IF NOT EXISTS {{ rejects }} (
    window_start DATE,
    window_end DATE,
    raw_json STRING,
    reason STRING,
    _rejected_at TIMESTAMP
);
-- One row per load (and per completed catch-up's check); columns added since a table was made:
-- add_audit_columns.sql.
CREATE TABLE IF NOT EXISTS {{ audit }} (
    run_id STRING,
    window_start DATE,
    window_end DATE,
    rows_read INT64,
    rows_rejected INT64,
    rows_inserted INT64,
    rows_updated INT64,
    rows_deleted INT64,
    loaded_at TIMESTAMP,
    kind STRING,
    source_updated_through TIMESTAMP,
    source_rows_updated_at TIMESTAMP,
    bytes_billed INT64,
    bytes_processed INT64,
    months_touched STRING
);
