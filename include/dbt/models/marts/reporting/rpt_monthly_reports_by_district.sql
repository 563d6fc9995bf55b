-- Reports per month, police district and category group (of the report's primary offence),
-- zeros included, with the same month a year earlier and the year-over-year change. By month
-- (macros/incremental_months.sql): a month touched changes its row and next year's.
{{ config(**by_month_config('month_start_date', ['police_district', 'category_group'])) }}

{%- set months = months_to_rebuild(shifts=[0, 12]) %}

with

reports as (

    select * from {{ ref('fct_incident_reports') }}
    where {{ in_months('incident_date', months_back(months, [0, 12])) }}

),

built as (

    -- the newest load the reports read held (macros/incremental_months.sql)
    select max(loaded_through) as loaded_through from reports

),

districts as (

    select police_district from {{ ref('dim_police_districts') }}

),

category_groups as (

    select category_group from {{ ref('category_groups') }}

),

by_month as (

    select
        cast({{ dbt.date_trunc('month', 'incident_date') }} as date) as month_start_date,
        police_district,
        primary_category_group as category_group,
        offence_count

    from reports

),

months as (

    select distinct month_start_date from by_month

),

spine as (

    select
        months.month_start_date,
        districts.police_district,
        category_groups.category_group

    from months
    cross join districts
    cross join category_groups

),

counts as (

    select
        month_start_date,
        police_district,
        category_group,
        count(*) as report_count,
        cast(sum(offence_count) as {{ dbt.type_bigint() }}) as offence_count

    from by_month
    group by month_start_date, police_district, category_group

),

monthly as (

    select
        spine.month_start_date,
        spine.police_district,
        spine.category_group,
        coalesce(counts.report_count, 0) as report_count,
        coalesce(counts.offence_count, 0) as offence_count

    from spine
    left join counts
        on
            spine.month_start_date = counts.month_start_date
            and spine.police_district = counts.police_district
            and spine.category_group = counts.category_group

),

prior_year as (

    select
        monthly.*,
        last_year.report_count as prior_year_report_count

    from monthly
    left join monthly as last_year
        on
            last_year.month_start_date
            = cast({{ dbt.dateadd('year', -1, 'monthly.month_start_date') }} as date)
            and monthly.police_district = last_year.police_district
            and monthly.category_group = last_year.category_group

),

final as (

    select
        month_start_date,
        police_district,
        category_group,
        report_count,
        offence_count,
        prior_year_report_count,
        case
            when prior_year_report_count > 0
                then
                    (report_count - prior_year_report_count)
                    / cast(prior_year_report_count as {{ type_double() }})
        end as yoy_change,
        (select built.loaded_through from built) as loaded_through

    from prior_year
    where {{ in_months('month_start_date', months) }}

)

select * from final
