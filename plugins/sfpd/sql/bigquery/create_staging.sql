{% import "_macros.sql" as m -%}
-- Staging: replaced by each run's load job (explicit schema, like the raw table).
CREATE OR REPLACE TABLE `{{ staging }}` (
{{- m.definitions(columns) }}
);
