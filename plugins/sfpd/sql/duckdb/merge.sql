{% import "_macros.sql" as m -%}
{% import "_scope.sql" as s with context -%}
-- Upsert the staged rows on row_id wherever the table holds them (a row whose incident date
-- moved upstream is updated in place, so row_id stays unique), and delete the window's rows
-- the source no longer has (sealed records). Literal dates on incident_date, in the match and
-- the delete condition, limit the rows the MERGE reads and writes. It returns a row per changed
-- row, naming what it did (the load's counts).
MERGE INTO {{ raw }} AS target
USING {{ staging }} AS source
ON target.row_id = source.row_id AND ({{ s.target("target.incident_date") }})
WHEN MATCHED AND {{ m.changed(columns) }} THEN UPDATE SET
{{- m.assignments(columns) }}
    _loaded_at = make_timestamp({{ loaded_at_us }})
WHEN NOT MATCHED BY TARGET THEN INSERT (
{{- m.names(columns) }},
    _loaded_at
) VALUES (
{{- m.names(columns, "source.") }},
    make_timestamp({{ loaded_at_us }})
)
{%- if window_start %}
WHEN NOT MATCHED BY SOURCE AND {{ s.in_window("target.incident_date") }} THEN DELETE
{%- endif %}
RETURNING merge_action;
