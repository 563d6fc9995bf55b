{% import "_macros.sql" as m -%}
{% import "_scope.sql" as s with context -%}
-- Upsert the staged rows on row_id wherever the table holds them (a row whose incident date
-- moved upstream is updated in place, so row_id stays unique). Literal dates on the partition
-- column, in the match and in the WHEN MATCHED clause, limit what BigQuery reads and writes to
-- the window's partitions and the moved rows'. No NOT MATCHED BY SOURCE branch: beside NOT
-- MATCHED it makes a full outer join that cannot be pruned (BigQuery's "Using DML with
-- partitioned tables"); the window's rows gone upstream went before (delete_gone.sql).
MERGE {{ raw }} AS target
USING {{ staging }} AS source
ON target.row_id = source.row_id AND ({{ s.target("target.incident_date") }})
WHEN MATCHED AND ({{ s.target("target.incident_date") }}) AND {{ m.changed(columns) }}
    THEN UPDATE SET
{{- m.assignments(columns) }}
    _loaded_at = TIMESTAMP_MICROS({{ loaded_at_us }})
WHEN NOT MATCHED BY TARGET THEN INSERT (
{{- m.names(columns) }},
    _loaded_at
) VALUES (
{{- m.names(columns, "source.") }},
    TIMESTAMP_MICROS({{ loaded_at_us }})
);
