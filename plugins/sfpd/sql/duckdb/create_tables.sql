{% import "_macros.sql" as m -%}
-- The raw table (one row per offence, row_id), the quarantine and the load audit.
CREATE SCHEMA IF NOT EXISTS {{ schema }};
CREATE TABLE IF NOT EXISTS {{ schema }}.{{ table }} (
{{- m.definitions(columns) }},
    _loaded_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS {{ schema }}.{{ table }}_rejects (
    window_start DATE,
    window_end DATE,
    raw_json VARCHAR,
    reason VARCHAR,
    _rejected_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS {{ schema }}.load_audit (
    run_id VARCHAR,
    window_start DATE,
    window_end DATE,
    rows_read BIGINT,
    rows_rejected BIGINT,
    rows_inserted BIGINT,
    rows_updated BIGINT,
    rows_deleted BIGINT,
    loaded_at TIMESTAMP
);
-- Added in 0.3 (a warehouse made before gets them here): what each load was, and the source's
-- latest :updated_at when its read began (the catch-up's watermark).
ALTER TABLE {{ schema }}.load_audit ADD COLUMN IF NOT EXISTS kind VARCHAR;
ALTER TABLE {{ schema }}.load_audit ADD COLUMN IF NOT EXISTS source_updated_through TIMESTAMP;
-- Added with the "anything changed?" check: when the source's data last changed as the load
-- began (its metadata's rowsUpdatedAt).
ALTER TABLE {{ schema }}.load_audit ADD COLUMN IF NOT EXISTS source_rows_updated_at TIMESTAMP;
