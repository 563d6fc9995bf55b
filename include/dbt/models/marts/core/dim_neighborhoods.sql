-- The 41 analysis neighborhoods, each with the supervisorial district most of its offences
-- fall in and that district's supervisor (names effective from the seed's as-of date).
with

neighborhoods as (

    select * from {{ ref('analysis_neighborhoods') }}

),

supervisors as (

    select
        sup_dist,
        sup_name,
        -- the seed's data_as_of, 'MM/DD/YYYY hh:mm:ss AM'; converted before the left join below,
        -- which leaves it null for a neighborhood with no offences yet
        cast(
            concat(
                substr(data_as_of, 7, 4), '-',
                substr(data_as_of, 1, 2), '-',
                substr(data_as_of, 4, 2)
            ) as date
        ) as effective_date

    from {{ ref('supervisor_districts') }}

),

offences as (

    select * from {{ ref('fct_incident_offences') }}

),

district_counts as (

    select
        analysis_neighborhood,
        supervisor_district,
        count(*) as offence_count

    from offences
    where analysis_neighborhood is not null and supervisor_district is not null
    group by analysis_neighborhood, supervisor_district

),

main_district as (

    select
        analysis_neighborhood,
        supervisor_district,
        row_number() over (
            partition by analysis_neighborhood
            order by offence_count desc, supervisor_district asc
        ) as district_rank

    from district_counts

),

final as (

    select
        neighborhoods.analysis_neighborhood,
        main_district.supervisor_district,
        supervisors.sup_name as supervisor_name,
        supervisors.effective_date as supervisor_effective_date

    from neighborhoods
    left join main_district
        on
            neighborhoods.analysis_neighborhood = main_district.analysis_neighborhood
            and main_district.district_rank = 1
    left join supervisors
        on main_district.supervisor_district = supervisors.sup_dist

)

select * from final
