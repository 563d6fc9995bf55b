-- Each neighborhood's 168 day-of-week x hour cells, scored against the count expected of the
-- cell if the neighborhood had the city's weekly rhythm: expected = the neighborhood's reports
-- x the share of the city's reports at that day and hour. The score is the Poisson deviance
-- residual of the count (macros/poisson_score.sql): a quiet neighborhood's cell of 3 reports
-- scores low, a busy cell far above its expectation high. Cells are ranked only with at least
-- var('hotspot_min_reports') reports. Reports at exactly 00:00 or 12:00 are counted apart (the
-- times recorded when the real one is unknown), and reports with a sensitive offence are left
-- out unless var('include_sensitive_categories') (int_report_counts_by_neighborhood_hour).
-- z_score (against the neighborhood's own mean) is kept for continuity; do not rank by it.
with

cells as (

    select * from {{ ref('int_report_counts_by_neighborhood_hour') }}

),

stats as (

    select
        *,
        avg(report_count) over (partition by analysis_neighborhood) as mean_report_count,
        stddev_pop(report_count) over (partition by analysis_neighborhood) as stddev_report_count,
        sum(report_count) over (partition by analysis_neighborhood) as neighborhood_report_count,
        sum(report_count) over (partition by day_of_week_number, incident_hour)
            as hour_report_count,
        sum(report_count) over () as city_report_count

    from cells

),

expected as (

    select
        *,
        case
            when city_report_count > 0
                then cast(neighborhood_report_count as {{ type_double() }})
                    * hour_report_count / city_report_count
        end as expected_report_count

    from stats

),

scored as (

    select
        *,
        {{ poisson_score('report_count', 'expected_report_count') }} as hotspot_score,
        report_count >= {{ var('hotspot_min_reports') }} as meets_min_reports

    from expected

),

final as (

    select
        analysis_neighborhood,
        day_of_week_number,
        case day_of_week_number
            when 1 then 'Monday'
            when 2 then 'Tuesday'
            when 3 then 'Wednesday'
            when 4 then 'Thursday'
            when 5 then 'Friday'
            when 6 then 'Saturday'
            when 7 then 'Sunday'
        end as day_of_week,
        incident_hour,
        report_count,
        imprecise_time_report_count,
        round(expected_report_count, 4) as expected_report_count,
        hotspot_score,
        meets_min_reports,
        case
            when meets_min_reports
                then cast(rank() over (
                        partition by meets_min_reports order by hotspot_score desc
                    ) as {{ dbt.type_bigint() }})
        end as hotspot_rank,
        {{ var('include_sensitive_categories') }} as includes_sensitive_categories,
        cast(mean_report_count as {{ type_double() }}) as neighborhood_mean_report_count,
        cast(stddev_report_count as {{ type_double() }}) as neighborhood_stddev_report_count,
        case
            when stddev_report_count > 0
                then cast((report_count - mean_report_count) / stddev_report_count as {{ type_double() }})
        end as z_score

    from scored

)

select * from final
