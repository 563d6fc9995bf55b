-- The raw table: one row per offence (row_id), columns from sfpd.schema.
CREATE SCHEMA IF NOT EXISTS {{ schema }};
CREATE TABLE IF NOT EXISTS {{ schema }}.{{ table }} (
{%- for name, type in columns %}
    {{ name }} {{ type }}{{ "," if not loop.last }}
{%- endfor %}
);
