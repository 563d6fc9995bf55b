-- The audit's columns a dataset made by an earlier version lacks (`missing`: [(name, type)]),
-- in one statement: one metadata update of the table, run only when its schema (read through
-- the API) lacks them.
ALTER TABLE {{ audit }}
{%- for name, kind in missing %}
    ADD COLUMN IF NOT EXISTS {{ name }} {{ kind }}{{ "," if not loop.last else ";" }}
{%- endfor %}
