-- What changed lately: each neighborhood x category group's reports in the last 28 days of the
-- data against the same cell's baseline, the 52 weeks before those 28 days (or as much of them
-- as the data has, at least 28 days). Expected = (baseline reports + 0.5) x 28 / baseline days:
-- the 0.5 keeps a cell with no baseline from scoring infinitely. The score is the Poisson
-- deviance residual of the recent count (macros/poisson_score.sql), ranked only with at least
-- var('hotspot_min_reports') recent reports. Reports with a sensitive offence are left out
-- unless var('include_sensitive_categories').
-- Reads the reports of those 392 days only: the last day is looked up first, so the period's
-- bounds are literal dates (BigQuery reads only their partitions).
{%- set last_date = none %}
{%- if execute and load_relation(ref('fct_incident_reports')) is not none %}
    {%- set last_date = run_query(
        "select max(incident_date) from " ~ ref('fct_incident_reports')
    ).columns[0].values()[0] %}
{%- endif %}

with

reports as (

    select * from {{ ref('fct_incident_reports') }}
    where {{ hotspot_filter() }}
    {%- if last_date %}
        and incident_date >= date '{{ (last_date - modules.datetime.timedelta(days=391)).strftime('%Y-%m-%d') }}'
    {%- endif %}

),

latest as (

    select
        min(incident_date) as first_date,
        cast({{ dbt.dateadd('day', 1, 'max(incident_date)') }} as date) as period_end_date

    from {{ ref('fct_incident_reports') }}

),

periods as (

    select
        period_end_date,
        cast({{ dbt.dateadd('day', -28, 'period_end_date') }} as date) as period_start_date,
        case
            when first_date > cast({{ dbt.dateadd('day', -392, 'period_end_date') }} as date)
                then first_date
            else cast({{ dbt.dateadd('day', -392, 'period_end_date') }} as date)
        end as baseline_start_date

    from latest

),

cells as (

    select
        neighborhoods.analysis_neighborhood,
        category_groups.category_group

    from {{ ref('dim_neighborhoods') }} as neighborhoods
    cross join {{ ref('category_groups') }} as category_groups

),

counts as (

    select
        reports.analysis_neighborhood,
        reports.primary_category_group as category_group,
        sum(
            case
                when reports.incident_date >= periods.period_start_date then 1 else 0
            end
        ) as recent_report_count,
        sum(
            case
                when
                    reports.incident_date >= periods.baseline_start_date
                    and reports.incident_date < periods.period_start_date
                    then 1
                else 0
            end
        ) as baseline_report_count

    from reports
    cross join periods
    group by reports.analysis_neighborhood, reports.primary_category_group

),

filled as (

    select
        cells.analysis_neighborhood,
        cells.category_group,
        periods.period_start_date,
        periods.period_end_date,
        periods.baseline_start_date,
        {{ dbt.datediff('periods.baseline_start_date', 'periods.period_start_date', 'day') }}
            as baseline_days,
        cast(coalesce(counts.recent_report_count, 0) as {{ dbt.type_bigint() }})
            as recent_report_count,
        cast(coalesce(counts.baseline_report_count, 0) as {{ dbt.type_bigint() }})
            as baseline_report_count

    from cells
    cross join periods
    left join counts
        on
            cells.analysis_neighborhood = counts.analysis_neighborhood
            and cells.category_group = counts.category_group

),

expected as (

    select
        *,
        case
            when baseline_days >= 28
                then (baseline_report_count + 0.5) * 28 / cast(baseline_days as {{ type_double() }})
        end as expected_report_count

    from filled

),

scored as (

    select
        *,
        {{ poisson_score('recent_report_count', 'expected_report_count') }} as hotspot_score,
        recent_report_count >= {{ var('hotspot_min_reports') }} as meets_min_reports

    from expected

),

final as (

    select
        analysis_neighborhood,
        category_group,
        period_start_date,
        period_end_date,
        baseline_start_date,
        cast(baseline_days as {{ dbt.type_bigint() }}) as baseline_days,
        recent_report_count,
        baseline_report_count,
        round(expected_report_count, 4) as expected_report_count,
        hotspot_score,
        meets_min_reports,
        case
            when meets_min_reports and hotspot_score is not null
                then cast(rank() over (
                        partition by meets_min_reports and hotspot_score is not null
                        order by hotspot_score desc
                    ) as {{ dbt.type_bigint() }})
        end as hotspot_rank,
        {{ var('include_sensitive_categories') }} as includes_sensitive_categories

    from scored

)

select * from final
