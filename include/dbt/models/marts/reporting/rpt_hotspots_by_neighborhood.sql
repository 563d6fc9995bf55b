-- Each neighborhood's 168 day-of-week x hour cells with the z-score of the cell's count
-- against that neighborhood's own mean and standard deviation over its cells, so a quiet
-- neighborhood's busy hour stands out as much as a busy one's. Reports at exactly 00:00 or
-- 12:00 are left out of the z-score (counted apart), so the heaping of unknown times does not
-- show up as hotspots at midnight and noon.
with

cells as (

    select * from {{ ref('int_report_counts_by_neighborhood_hour') }}

),

stats as (

    select
        *,
        avg(report_count) over (partition by analysis_neighborhood) as mean_report_count,
        stddev_pop(report_count) over (partition by analysis_neighborhood) as stddev_report_count

    from cells

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
        cast(mean_report_count as {{ type_double() }}) as neighborhood_mean_report_count,
        cast(stddev_report_count as {{ type_double() }}) as neighborhood_stddev_report_count,
        case
            when stddev_report_count > 0
                then cast((report_count - mean_report_count) / stddev_report_count as {{ type_double() }})
        end as z_score

    from stats

)

select * from final
