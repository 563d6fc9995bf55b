-- Reports per day, police district and category group (of the report's primary offence), on
-- every day the data has reports, zeros included; with the rolling 28-day count and the same
-- 28 days 52 weeks earlier (same weekdays) for year-over-year change. By month
-- (macros/incremental_months.sql): a day's counts reach 27 days ahead and 364 to 391 days
-- ahead, so a month touched changes its rows, the next month's and those 11 to 13 months on;
-- a rebuilt month reads its reports and the 391 days before.
{{ config(**by_month_config('incident_date', ['police_district', 'category_group'])) }}

{%- set months = months_to_rebuild(shifts=[0, 1, 11, 12, 13]) %}

with

reports as (

    select * from {{ ref('fct_incident_reports') }}
    where {{ in_months('incident_date', months, days_before=391) }}

),

first_date as (

    -- the data's first day: a year-over-year change needs a year of data before it
    select min({{ day_number('incident_date') }}) as first_day_number
    from {{ ref('fct_incident_reports') }}

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

days as (

    select distinct incident_date from reports

),

spine as (

    select
        days.incident_date,
        districts.police_district,
        category_groups.category_group

    from days
    cross join districts
    cross join category_groups

),

counts as (

    select
        incident_date,
        police_district,
        primary_category_group as category_group,
        count(*) as report_count,
        cast(sum(offence_count) as {{ dbt.type_bigint() }}) as offence_count

    from reports
    group by incident_date, police_district, primary_category_group

),

daily as (

    select
        spine.incident_date,
        spine.police_district,
        spine.category_group,
        coalesce(counts.report_count, 0) as report_count,
        coalesce(counts.offence_count, 0) as offence_count

    from spine
    left join counts
        on
            spine.incident_date = counts.incident_date
            and spine.police_district = counts.police_district
            and spine.category_group = counts.category_group

),

rolling as (

    select
        *,
        sum(report_count) over (
            partition by police_district, category_group
            order by {{ day_number('incident_date') }}
            range between 27 preceding and current row
        ) as rolling_28d_sum,
        sum(report_count) over (
            partition by police_district, category_group
            order by {{ day_number('incident_date') }}
            range between 391 preceding and 364 preceding
        ) as prior_year_rolling_28d_sum,
        {{ day_number('incident_date') }} - (select first_date.first_day_number from first_date)
            as days_since_first_date

    from daily

),

final as (

    select
        incident_date,
        police_district,
        category_group,
        report_count,
        offence_count,
        cast(rolling_28d_sum as {{ dbt.type_bigint() }}) as rolling_28d_report_count,
        case
            when days_since_first_date >= 391
                then cast(coalesce(prior_year_rolling_28d_sum, 0) as {{ dbt.type_bigint() }})
        end as prior_year_rolling_28d_report_count,
        case
            when
                days_since_first_date >= 391
                and prior_year_rolling_28d_sum > 0
                then
                    (rolling_28d_sum - prior_year_rolling_28d_sum)
                    / cast(prior_year_rolling_28d_sum as {{ type_double() }})
        end as rolling_28d_yoy_change,
        (select built.loaded_through from built) as loaded_through

    from rolling
    where {{ in_months('incident_date', months) }}

)

select * from final
