{#- The run's window [SFPD_WINDOW_START, SFPD_WINDOW_END) as dates, from the environment
    variables the DAG sets (Cosmos ProjectConfig.env_vars). Environment variables, not --vars:
    dbt re-parses only the files that read a changed variable, while any change of --vars
    makes it parse the whole project again, at every run (README, "dbt under a scheduler").
    An incremental build without them is refused: it would not know which dates to replace. -#}
{% macro window_bound(name) -%}
    {%- set value = env_var('SFPD_' ~ name | upper, '') -%}
    {%- if value in ('', 'None') -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ " is incremental on the run's window: set SFPD_WINDOW_START and "
            ~ "SFPD_WINDOW_END (YYYY-MM-DD) or use --full-refresh") }}
    {%- endif -%}
    {{ return(modules.datetime.date.fromisoformat(value | string)) }}
{%- endmacro %}

{#- BigQuery insert_overwrite: every date partition of the window, including days whose rows
    were all removed upstream (static partitions, so they are emptied too). -#}
{% macro window_partitions() -%}
    {%- if not (env_var('SFPD_WINDOW_START', '') and env_var('SFPD_WINDOW_END', '')) -%}
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
