{#- Custom schemas are used as named (sfpd_staging, sfpd_marts, ...), not prefixed with the
    target schema, so DuckDB and BigQuery get the same, readable dataset names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        sfpd_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
