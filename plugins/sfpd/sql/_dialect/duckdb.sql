{#- What DuckDB writes differently from BigQuery (_dialect/bigquery.sql defines the same
    macros): the shared statements in load/ import this file as `d`. -#}
{% macro countif(condition) %}COUNT(*) FILTER (WHERE {{ condition }}){% endmacro %}

{% macro max_if(value, condition) %}MAX({{ value }}) FILTER (WHERE {{ condition }}){% endmacro %}

{% macro json_string(column, path) %}JSON_EXTRACT_STRING({{ column }}, '{{ path }}'){% endmacro %}

{#- The date a 'YYYY-MM-DD...' string starts with; NULL when it does not. -#}
{% macro date_prefix(text) %}TRY_CAST(LEFT({{ text }}, 10) AS DATE){% endmacro %}

{% macro to_date(value) %}CAST({{ value }} AS DATE){% endmacro %}

{#- A TIMESTAMP from microseconds since the epoch (exact in both engines). -#}
{% macro timestamp_us(microseconds) %}MAKE_TIMESTAMP({{ microseconds }}){% endmacro %}

{% macro param(name) %}${{ name }}{% endmacro %}

{% macro merge_into() %}MERGE INTO{% endmacro %}

{#- A row per changed row, naming what the MERGE did: the load's counts. -#}
{% macro merge_returning() %}
RETURNING merge_action{% endmacro %}
