{#- A 64-bit float. dbt's type_float() is FLOAT, 32 bits, on DuckDB. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'sfpd')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}
