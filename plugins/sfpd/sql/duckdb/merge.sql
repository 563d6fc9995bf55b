{% import "_macros.sql" as m -%}
-- Upsert the staged rows on row_id wherever the table holds them (a row whose incident date
-- moved upstream is updated in place, so row_id stays unique), and delete the window's rows
-- the source no longer has (sealed records). Without a window (a catch-up) nothing is deleted.
MERGE INTO {{ schema }}.{{ table }} AS target
USING {{ schema }}.{{ staging }} AS source
ON target.row_id = source.row_id
WHEN MATCHED AND {{ m.changed(columns) }} THEN UPDATE SET
{{- m.assignments(columns) }}
    _loaded_at = $loaded_at
WHEN NOT MATCHED BY TARGET THEN INSERT (
{{- m.names(columns) }},
    _loaded_at
) VALUES (
{{- m.names(columns, "source.") }},
    $loaded_at
)
{%- if window %}
WHEN NOT MATCHED BY SOURCE
    AND target.incident_date >= $window_start AND target.incident_date < $window_end
    THEN DELETE
{%- endif %};
