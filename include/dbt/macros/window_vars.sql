{#- The run's window [window_start, window_end) as SQL date literals, from the dbt vars the
    DAG passes (Cosmos operator vars). An incremental build without them is refused: it would
    not know which dates to replace. -#}
{% macro window_bound(name) -%}
    {%- set value = var(name) -%}
    {%- if value is none or value == '' or value == 'None' -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ " is incremental on the run's window: pass --vars "
            ~ "'{window_start: YYYY-MM-DD, window_end: YYYY-MM-DD}' or use --full-refresh") }}
    {%- endif -%}
    {{ return(modules.datetime.date.fromisoformat(value | string)) }}
{%- endmacro %}

{#- BigQuery insert_overwrite: every date partition of the window, including days whose rows
    were all removed upstream (static partitions, so they are emptied too). -#}
{% macro window_partitions() -%}
    {%- if not (var('window_start') and var('window_end')) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = window_bound('window_start') -%}
    {%- set days = (window_bound('window_end') - start).days -%}
    {%- set partitions = [] -%}
    {%- for offset in range(days) -%}
        {%- do partitions.append("date '" ~ (start + modules.datetime.timedelta(days=offset)).isoformat() ~ "'") -%}
    {%- endfor -%}
    {{ return(partitions) }}
{%- endmacro %}
