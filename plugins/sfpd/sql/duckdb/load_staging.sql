-- Staging: exactly the window's lake files, typed like the raw table. $files = list of paths.
CREATE OR REPLACE TABLE {{ schema }}.{{ staging }} AS
SELECT
{%- for name, type in columns %}
    CAST({{ name }} AS {{ type }}) AS {{ name }}{{ "," if not loop.last }}
{%- endfor %}
FROM read_parquet($files);
