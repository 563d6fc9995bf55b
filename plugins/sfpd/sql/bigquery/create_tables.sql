{% import "_macros.sql" as m -%}
-- The raw table: one row per offence (row_id), columns from sfpd.schema. Partitioned by the
-- incident date (the window is whole days), clustered on what the marts filter and group by.
CREATE TABLE IF NOT EXISTS `{{ raw }}` (
{{- m.definitions(columns) }},
    _loaded_at TIMESTAMP
)
PARTITION BY incident_date
CLUSTER BY {{ cluster_by | join(", ") }};
