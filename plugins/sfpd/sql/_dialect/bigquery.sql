{#- What BigQuery writes differently from DuckDB (_dialect/duckdb.sql defines the same
    macros): the shared statements in load/ import this file as `d`. -#}
{% macro countif(condition) %}COUNTIF({{ condition }}){% endmacro %}

{% macro max_if(value, condition) %}MAX(IF({{ condition }}, {{ value }}, NULL)){% endmacro %}

{% macro json_string(column, path) %}JSON_VALUE({{ column }}, '{{ path }}'){% endmacro %}

{#- The date a 'YYYY-MM-DD...' string starts with; NULL when it does not. -#}
{% macro date_prefix(text) %}SAFE.PARSE_DATE('%Y-%m-%d', SUBSTR({{ text }}, 1, 10)){% endmacro %}

{% macro to_date(value) %}DATE({{ value }}){% endmacro %}

{#- A TIMESTAMP from microseconds since the epoch (exact in both engines). -#}
{% macro timestamp_us(microseconds) %}TIMESTAMP_MICROS({{ microseconds }}){% endmacro %}

{% macro param(name) %}@{{ name }}{% endmacro %}

{% macro merge_into() %}MERGE{% endmacro %}

{#- BigQuery reports a MERGE's counts in the job's statistics (dmlStats). -#}
{% macro merge_returning() %}{% endmacro %}
