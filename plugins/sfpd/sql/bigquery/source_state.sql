-- What the loads so far saw of the source (sfpd.pipeline.skip_reason): the latest data-change
-- time (the metadata's rowsUpdatedAt) any load read, the latest a completed catch-up read (its
-- 'check' row), and when the first load ran.
SELECT
    MAX(source_rows_updated_at),
    MAX(IF(kind = 'check', source_rows_updated_at, NULL)),
    MIN(loaded_at)
FROM {{ audit }};
