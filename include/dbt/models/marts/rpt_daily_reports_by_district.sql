-- Reports (distinct incident_id) and offences per day and police district.
with

incidents as (

    select * from {{ ref('stg_sfpd__incidents') }}

),

daily as (

    select
        incident_date,
        police_district,
        count(distinct incident_id) as report_count,
        count(*) as offence_count
    from incidents
    group by incident_date, police_district

)

select * from daily
