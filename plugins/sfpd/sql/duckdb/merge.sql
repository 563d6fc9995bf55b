{% import "_macros.sql" as m -%}
{% import "_scope.sql" as s with context -%}
-- Upsert the staged rows on row_id wherever the table holds them (a row whose incident date
-- moved upstream is updated in place, so row_id stays unique). Literal dates on incident_date
-- limit the target to the window and the moved rows' dates. No NOT MATCHED BY SOURCE branch:
-- the window's rows gone upstream went before (delete_gone.sql). It returns a row per changed
-- row, naming what it did (the load's counts).
MERGE INTO {{ raw }} AS target
USING {{ staging }} AS source
ON target.row_id = source.row_id AND ({{ s.target("target.incident_date") }})
WHEN MATCHED AND ({{ s.target("target.incident_date") }}) AND {{ m.changed(columns) }}
    THEN UPDATE SET
{{- m.assignments(columns) }}
    _loaded_at = make_timestamp({{ loaded_at_us }})
WHEN NOT MATCHED BY TARGET THEN INSERT (
{{- m.names(columns) }},
    _loaded_at
) VALUES (
{{- m.names(columns, "source.") }},
    make_timestamp({{ loaded_at_us }})
)
RETURNING merge_action;
