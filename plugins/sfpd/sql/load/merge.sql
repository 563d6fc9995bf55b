{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
{% import "_macros.sql" as m -%}
{% import "_scope.sql" as s with context -%}
-- Upsert the staged rows on row_id wherever the table holds them (a row whose incident date
-- moved upstream is updated in place, so row_id stays unique). Literal dates on incident_date,
-- in the match and in the WHEN MATCHED clause, limit the target to the window and the moved
-- rows' dates (on BigQuery: what it reads and writes to those partitions). No NOT MATCHED BY
-- SOURCE branch: beside NOT MATCHED it makes a full outer join that BigQuery cannot prune
-- ("Using DML with partitioned tables"); the window's rows gone upstream went before
-- (delete_gone.sql). DuckDB returns a row per changed row naming what it did, BigQuery its
-- job's statistics: the load's counts.
{{ d.merge_into() }} {{ raw }} AS target
USING {{ staging }} AS source
ON target.row_id = source.row_id AND ({{ s.target("target.incident_date") }})
WHEN MATCHED AND ({{ s.target("target.incident_date") }}) AND {{ m.changed(columns) }}
    THEN UPDATE SET
{{- m.assignments(columns) }}
    _loaded_at = {{ d.timestamp_us(loaded_at_us) }}
WHEN NOT MATCHED BY TARGET THEN INSERT (
{{- m.names(columns) }},
    _loaded_at
) VALUES (
{{- m.names(columns, "source.") }},
    {{ d.timestamp_us(loaded_at_us) }}
){{ d.merge_returning() }};
