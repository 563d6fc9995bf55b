-- Replace a table by the rows of Parquet files ($files: their paths), typed as `file_columns`.
-- (BigQuery loads files with a load job: sfpd.warehouse.bigquery_engine.)
CREATE OR REPLACE TABLE {{ table }} AS
SELECT
{%- for name, type in file_columns %}
    CAST({{ name }} AS {{ type }}) AS {{ name }}{{ "," if not loop.last }}
{%- endfor %}
FROM READ_PARQUET($files);
