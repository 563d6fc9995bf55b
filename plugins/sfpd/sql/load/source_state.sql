{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
-- What the loads so far saw of the source (sfpd.pipeline.Loader.skip_reason): the latest
-- source_rows_updated_at any load recorded, the latest a completed catch-up recorded (its
-- 'check' row), and when the first load ran (docs/how-it-works.md, "Glossary").
SELECT
    MAX(source_rows_updated_at),
    {{ d.max_if("source_rows_updated_at", "kind = 'check'") }},
    MIN(loaded_at)
FROM {{ audit }};
