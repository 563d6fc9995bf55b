-- Upsert the window into the raw table on row_id: update matched rows, insert new ones.
-- The literal date bounds on the target's partition column let BigQuery prune partitions.
MERGE `{{ raw }}` AS target
USING `{{ staging }}` AS source
ON target.row_id = source.row_id
    AND target.incident_date >= DATE '{{ window_start }}'
    AND target.incident_date < DATE '{{ window_end }}'
WHEN MATCHED THEN UPDATE SET
{%- for name, _ in columns %}
    {{ name }} = source.{{ name }}{{ "," if not loop.last }}
{%- endfor %}
WHEN NOT MATCHED THEN INSERT (
{%- for name, _ in columns %}
    {{ name }}{{ "," if not loop.last }}
{%- endfor %}
) VALUES (
{%- for name, _ in columns %}
    source.{{ name }}{{ "," if not loop.last }}
{%- endfor %}
);
