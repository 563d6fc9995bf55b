-- The audit's columns a warehouse made by an earlier version lacks (`missing`: [(name, type)],
-- BigQuery's type names), one statement each (DuckDB alters one column at a time).
{% for name, kind in missing -%}
ALTER TABLE {{ audit }} ADD COLUMN IF NOT EXISTS {{ name }} {{ {"STRING": "VARCHAR", "INT64": "BIGINT"}.get(kind, kind) }};
{% endfor -%}
