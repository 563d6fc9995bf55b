{% import "_macros.sql" as m -%}
-- The raw table: one row per offence (row_id), columns from sfpd.schema. Partitioned by the
-- incident date (the window is whole days), clustered on what the marts filter and group by.
-- The dataset itself is created through the API (it needs its location).
CREATE TABLE IF NOT EXISTS {{ raw }} (
{{- m.definitions(columns) }},
    _loaded_at TIMESTAMP
)
PARTITION BY incident_date
CLUSTER BY {{ cluster_by | join(", ") }};
-- The quarantine: rows that could not be normalised, whole, with the reason.
CREATE TABLE IF NOT EXISTS {{ rejects }} (
    window_start DATE,
    window_end DATE,
    raw_json STRING,
    reason STRING,
    _rejected_at TIMESTAMP
);
-- One row per load (and per completed catch-up's check).
CREATE TABLE IF NOT EXISTS {{ audit }} (
    run_id STRING,
    window_start DATE,
    window_end DATE,
    rows_read INT64,
    rows_rejected INT64,
    rows_inserted INT64,
    rows_updated INT64,
    rows_deleted INT64,
    loaded_at TIMESTAMP
);
-- Added in 0.3 (a dataset made before gets them here): what each load was, and the source's
-- latest :updated_at when its read began (the catch-up's watermark).
ALTER TABLE {{ audit }} ADD COLUMN IF NOT EXISTS kind STRING;
ALTER TABLE {{ audit }} ADD COLUMN IF NOT EXISTS source_updated_through TIMESTAMP;
-- Added with the "anything changed?" check: when the source's data last changed as the load
-- began (its metadata's rowsUpdatedAt).
ALTER TABLE {{ audit }} ADD COLUMN IF NOT EXISTS source_rows_updated_at TIMESTAMP;
