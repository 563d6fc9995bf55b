-- Staging: replaced by each run's load job (explicit schema, like the raw table).
CREATE OR REPLACE TABLE `{{ staging }}` (
{%- for name, type in columns %}
    {{ name }} {{ type }}{{ "," if not loop.last }}
{%- endfor %}
);
