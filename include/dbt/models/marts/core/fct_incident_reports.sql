-- One row per report (incident_id), described by its primary offence.
{{ config(
    partition_by=(
        {'field': 'incident_date', 'data_type': 'date', 'granularity': 'month'}
        if target.type == 'bigquery' else none
    ),
    cluster_by=(['police_district', 'primary_category_group'] if target.type == 'bigquery' else none),
) }}

with

reports as (

    select * from {{ ref('int_incident_reports') }}

),

final as (

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
        {{ dbt.datediff('incident_date', 'cast(reported_at as date)', 'day') }} as report_lag_days,  -- noqa: LT05
        report_type_code,
        report_type_description,
        is_filed_online,
        primary_row_id,
        primary_incident_code,
        primary_incident_category,
        primary_category,
        primary_category_group,
        offence_count,
        has_sensitive_offence,
        resolution,
        resolution in ('Cite or Arrest Adult', 'Cite or Arrest Juvenile') as is_cited_or_arrested,
        police_district,
        analysis_neighborhood,
        supervisor_district,
        intersection,
        latitude,
        longitude,
        is_time_imprecise,
        has_coordinates

    from reports

)

select * from final
