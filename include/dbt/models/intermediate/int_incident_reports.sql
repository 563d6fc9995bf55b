-- One row per report (incident_id). A report has one row per offence code; its primary
-- offence is the most severe category group, then the lowest incident_code, then row_id, so
-- the choice is deterministic.
with

offences as (

    select * from {{ ref('int_incident_offences__categorised') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by incident_id
            order by category_severity_rank, incident_code, row_id
        ) as offence_rank,
        count(*) over (partition by incident_id) as offence_count,
        max(case when is_sensitive then 1 else 0 end) over (partition by incident_id) = 1
            as has_sensitive_offence

    from offences

),

reports as (

    select
        incident_id,
        incident_number,
        cad_number,
        incident_at,
        incident_date,
        incident_day_of_week,
        day_of_week_number,
        incident_hour,
        reported_at,
        report_type_code,
        report_type_description,
        is_filed_online,
        row_id as primary_row_id,
        incident_code as primary_incident_code,
        incident_category as primary_incident_category,
        category as primary_category,
        category_group as primary_category_group,
        offence_count,
        has_sensitive_offence,
        resolution,
        police_district,
        analysis_neighborhood,
        supervisor_district,
        intersection,
        latitude,
        longitude,
        is_time_imprecise,
        has_coordinates

    from ranked
    where offence_rank = 1

)

select * from reports
