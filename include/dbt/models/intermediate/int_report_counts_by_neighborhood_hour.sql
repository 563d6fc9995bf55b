-- Reports per analysis neighborhood, ISO day of week and hour: all 168 cells of every
-- neighborhood, zeros included. Reports at exactly 00:00 or 12:00 (the times recorded when
-- the real time is unknown) are counted apart. Reports with an offence in a sensitive category
-- are left out unless var('include_sensitive_categories').
with

reports as (

    select * from {{ ref('fct_incident_reports') }}
    where {{ hotspot_filter() }}

),

neighborhoods as (

    select analysis_neighborhood from {{ ref('analysis_neighborhoods') }}

),

days as (

    select cast(generated_number as {{ dbt.type_bigint() }}) as day_of_week_number
    from ({{ dbt.generate_series(7) }}) as series

),

hours as (

    select cast(generated_number - 1 as {{ dbt.type_bigint() }}) as incident_hour
    from ({{ dbt.generate_series(24) }}) as series

),

cells as (

    select
        neighborhoods.analysis_neighborhood,
        days.day_of_week_number,
        hours.incident_hour

    from neighborhoods
    cross join days
    cross join hours

),

counts as (

    select
        analysis_neighborhood,
        day_of_week_number,
        incident_hour,
        sum(case when is_time_imprecise then 0 else 1 end) as report_count,
        sum(case when is_time_imprecise then 1 else 0 end) as imprecise_time_report_count

    from reports
    group by analysis_neighborhood, day_of_week_number, incident_hour

),

filled as (

    select
        cells.analysis_neighborhood,
        cells.day_of_week_number,
        cells.incident_hour,
        cast(coalesce(counts.report_count, 0) as {{ dbt.type_bigint() }}) as report_count,
        cast(coalesce(counts.imprecise_time_report_count, 0) as {{ dbt.type_bigint() }})
            as imprecise_time_report_count

    from cells
    left join counts
        on
            cells.analysis_neighborhood = counts.analysis_neighborhood
            and cells.day_of_week_number = counts.day_of_week_number
            and cells.incident_hour = counts.incident_hour

)

select * from filled
