-- Per canonical category (of the report's primary offence) and incident year: reports and the
-- share of them resolved each way. Recent reports are still open more often: compare years
-- with that in mind.
with

reports as (

    select * from {{ ref('fct_incident_reports') }}

),

counts as (

    select
        primary_category as category,
        primary_category_group as category_group,
        extract(year from incident_date) as incident_year,
        count(*) as report_count,
        sum(case when is_cited_or_arrested then 1 else 0 end) as cited_or_arrested_count,
        sum(case when resolution like 'Exceptional%' then 1 else 0 end) as exceptional_count,
        sum(case when resolution = 'Unfounded' then 1 else 0 end) as unfounded_count,
        sum(case when resolution = 'Open or Active' then 1 else 0 end) as open_count

    from reports
    group by primary_category, primary_category_group, extract(year from incident_date)

),

final as (

    select
        category,
        category_group,
        cast(incident_year as {{ dbt.type_bigint() }}) as incident_year,
        report_count,
        cast(cited_or_arrested_count as {{ dbt.type_bigint() }}) as cited_or_arrested_count,
        cast(exceptional_count as {{ dbt.type_bigint() }}) as exceptional_count,
        cast(unfounded_count as {{ dbt.type_bigint() }}) as unfounded_count,
        cast(open_count as {{ dbt.type_bigint() }}) as open_count,
        cited_or_arrested_count / cast(report_count as {{ type_double() }}) as cited_or_arrested_rate,
        (cited_or_arrested_count + exceptional_count)
        / cast(report_count as {{ type_double() }}) as cleared_rate,
        open_count / cast(report_count as {{ type_double() }}) as open_rate

    from counts

)

select * from final
