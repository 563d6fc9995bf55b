{% import "_macros.sql" as m -%}
-- The raw table: one row per offence (row_id), columns from sfpd.schema.
CREATE SCHEMA IF NOT EXISTS "{{ schema }}";
CREATE TABLE IF NOT EXISTS {{ raw }} (
{{- m.definitions(columns) }},
    _loaded_at TIMESTAMP
);
-- The quarantine: rows that could not be normalised, whole, with the reason.
CREATE TABLE IF NOT EXISTS {{ rejects }} (
    window_start DATE,
    window_end DATE,
    raw_json VARCHAR,
    reason VARCHAR,
    _rejected_at TIMESTAMP
);
-- One row per load (and per completed catch-up's check); columns added since a table was made:
-- add_audit_columns.sql.
CREATE TABLE IF NOT EXISTS {{ audit }} (
    run_id VARCHAR,
    window_start DATE,
    window_end DATE,
    rows_read BIGINT,
    rows_rejected BIGINT,
    rows_inserted BIGINT,
    rows_updated BIGINT,
    rows_deleted BIGINT,
    loaded_at TIMESTAMP,
    kind VARCHAR,
    source_updated_through TIMESTAMP,
    source_rows_updated_at TIMESTAMP,
    bytes_billed BIGINT,
    bytes_processed BIGINT,
    months_touched VARCHAR
);
