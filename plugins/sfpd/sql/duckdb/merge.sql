{% import "_macros.sql" as m -%}
-- Make the raw table's window equal the source's: update changed rows, insert new ones, delete
-- rows the source no longer has (sealed records). Rows outside the window are never touched:
-- the target is limited to the window's dates (on BigQuery this also prunes partitions).
MERGE INTO {{ schema }}.{{ table }} AS target
USING {{ schema }}.{{ staging }} AS source
ON target.row_id = source.row_id
    AND target.incident_date >= $window_start AND target.incident_date < $window_end
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
WHEN NOT MATCHED BY SOURCE
    AND target.incident_date >= $window_start AND target.incident_date < $window_end
    THEN DELETE;
