{#- Days since 1970-01-01 of a date: an integer to order RANGE windows by (BigQuery allows
    RANGE frames only over numbers). -#}
{% macro day_number(expression) -%}
    {{ return(adapter.dispatch('day_number', 'sfpd')(expression)) }}
{%- endmacro %}

{% macro default__day_number(expression) -%}
    ({{ expression }} - date '1970-01-01')
{%- endmacro %}

{% macro bigquery__day_number(expression) -%}
    unix_date({{ expression }})
{%- endmacro %}
