{% import "_macros.sql" as m -%}
-- Make the raw table's window equal the source's: update changed rows, insert new ones, delete
-- rows the source no longer has (sealed records). The literal date bounds on the target's
-- partition column keep rows outside the window untouched and let BigQuery prune partitions.
MERGE `{{ raw }}` AS target
USING `{{ staging }}` AS source
ON target.row_id = source.row_id
    AND target.incident_date >= DATE '{{ window_start }}'
    AND target.incident_date < DATE '{{ window_end }}'
WHEN MATCHED AND {{ m.changed(columns) }} THEN UPDATE SET
{{- m.assignments(columns) }}
    _loaded_at = TIMESTAMP '{{ loaded_at }}'
WHEN NOT MATCHED BY TARGET THEN INSERT (
{{- m.names(columns) }},
    _loaded_at
) VALUES (
{{- m.names(columns, "source.") }},
    TIMESTAMP '{{ loaded_at }}'
)
WHEN NOT MATCHED BY SOURCE
    AND target.incident_date >= DATE '{{ window_start }}'
    AND target.incident_date < DATE '{{ window_end }}'
    THEN DELETE;
