{#- ISO day of the week of a date or timestamp: 1 = Monday ... 7 = Sunday. The adapters
    disagree (BigQuery's DAYOFWEEK is 1 = Sunday), hence the dispatch. -#}
{% macro day_of_week_number(expression) -%}
    {{ return(adapter.dispatch('day_of_week_number', 'sfpd')(expression)) }}
{%- endmacro %}

{% macro default__day_of_week_number(expression) -%}
    isodow({{ expression }})
{%- endmacro %}

{% macro bigquery__day_of_week_number(expression) -%}
    mod(extract(dayofweek from {{ expression }}) + 5, 7) + 1
{%- endmacro %}
