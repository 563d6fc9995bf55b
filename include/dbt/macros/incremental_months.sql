{#- Incremental builds by month. A load records the months it touched in load_audit
    (months_touched: the months of its window or days, and the old months of rows whose date
    moved). Each row of a model built by month carries loaded_through: the newest load its
    input held when the row was built (fct_incident_offences: load_audit's newest loaded_at,
    read in the same query as the raw table; a model built from another: that one's newest
    loaded_through among the rows it read). An incremental build rebuilds, whole, the months
    touched by the loads newer than the model's newest loaded_through, and leaves every other
    month as it was. A model whose rows depend on other months (a rolling window, last year's
    month) asks for the months shifted: shifts=[0, 12] rebuilds a touched month and the same
    month a year later.

    months_to_rebuild() is none when the model builds in full (first build, --full-refresh, dbt
    parse), else the sorted list of months (dates, first of the month), maybe empty.
    Serial loads (the merge pool) commit in loaded_at order, so a query that saw a load saw
    every older one; a load committed after it is newer than its loaded_through, and its months
    are rebuilt at the next build. -#}
{% macro months_to_rebuild(shifts=[0]) -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if 'loaded_through' not in adapter.get_columns_in_relation(this) | map(attribute='name') -%}
        {%- do exceptions.raise_compiler_error(
            this ~ " was built whole by an earlier version (no loaded_through): rebuild it once"
            ~ " with `dbt build --full-refresh` (a run of the backfill DAG does)") -%}
    {%- endif -%}
    {%- set query -%}
        select months_touched
        from {{ source('sfpd', 'load_audit') }}
        where months_touched is not null
            and loaded_at > (
                select coalesce(max(loaded_through), cast('1970-01-01' as timestamp))
                from {{ this }}
            )
    {%- endset -%}
    {%- set touched = [] -%}
    {%- for row in run_query(query) -%}
        {%- for text in row[0].split() -%}
            {%- do touched.append(modules.datetime.date.fromisoformat(text)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set months = shifted_months(touched, shifts) -%}
    {%- do log(this.identifier ~ ": rebuilding months " ~ (months | join(" ") or "none"), info=True) -%}
    {{ return(months) }}
{%- endmacro %}

{#- Each month (a first day) moved by each of `shifts` months (back, when negative): the
    distinct results, sorted. -#}
{% macro shifted_months(months, shifts) -%}
    {%- set shifted = [] -%}
    {%- for month in months -%}
        {%- for shift in shifts -%}
            {%- set index = month.year * 12 + month.month - 1 + shift -%}
            {%- set moved = modules.datetime.date(index // 12, index % 12 + 1, 1) -%}
            {%- if moved not in shifted -%}{%- do shifted.append(moved) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(shifted | sort) }}
{%- endmacro %}

{#- A predicate true for the dates (`column`) in the months (months_to_rebuild()), or in the
    `days_before` days before each: literal dates, so BigQuery reads only those partitions.
    true when months is none (a full build), false when it is empty. -#}
{% macro in_months(column, months, days_before=0) -%}
    {%- if months is none -%}
        true
    {%- elif not months -%}
        false
    {%- else -%}
        ({% for month in months -%}
            {%- set next = (month + modules.datetime.timedelta(days=32)).replace(day=1) -%}
            {%- set start = month - modules.datetime.timedelta(days=days_before) -%}
            ({{ column }} >= date '{{ start }}' and {{ column }} < date '{{ next }}')
            {{- " or " if not loop.last }}
        {%- endfor %})
    {%- endif -%}
{%- endmacro %}

{#- The months a model rebuilt from: its input's months shifted back (the inverse of
    months_to_rebuild's shifts), so a rebuilt month finds the months it depends on. -#}
{% macro months_back(months, shifts) -%}
    {%- if months is none -%}{{ return(none) }}{%- endif -%}
    {%- set back = [] -%}
    {%- for shift in shifts -%}{%- do back.append(-shift) -%}{%- endfor -%}
    {{ return(shifted_months(months, back)) }}
{%- endmacro %}

{#- The config of a model rebuilt by month of `column` (a date): on BigQuery insert_overwrite
    of its month partitions (those the new rows fall in; the table partitioned by month), on
    DuckDB replace_months (below), the same done as a delete and an insert in one
    transaction. -#}
{% macro by_month_config(column, cluster_by=none) -%}
    {%- if target.type == 'bigquery' -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'insert_overwrite',
            'partition_by': {'field': column, 'data_type': 'date', 'granularity': 'month'},
            'cluster_by': cluster_by,
            'on_schema_change': 'fail',
        }) }}
    {%- else -%}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'replace_months',
            'month_column': column,
            'on_schema_change': 'fail',
        }) }}
    {%- endif -%}
{%- endmacro %}

{#- dbt-duckdb's equivalent of BigQuery's insert_overwrite by month: delete the target's rows in
    the months the new rows fall in, then insert them (the materialization runs both in one
    transaction). -#}
{% macro get_incremental_replace_months_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set month = "date_trunc('month', " ~ config.get('month_column') ~ ")" -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ month }} in (select distinct {{ month }} from {{ source }});
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}
