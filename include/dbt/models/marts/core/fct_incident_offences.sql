-- One row per offence (row_id), rebuilt whole from the raw table at each run. Rows change
-- upstream at any date (moved, corrected or sealed: the daily run's catch-up brings them into
-- the raw table), so a build limited to the run's window would leave them stale here.
-- Partitioned by month and clustered on BigQuery (the YAML says why).
{{ config(
    partition_by=(
        {'field': 'incident_date', 'data_type': 'date', 'granularity': 'month'}
        if target.type == 'bigquery' else none
    ),
    cluster_by=(['police_district', 'category_group'] if target.type == 'bigquery' else none),
) }}

with

offences as (

    select * from {{ ref('int_incident_offences__categorised') }}

),

final as (

    select
        row_id,
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
        incident_code,
        incident_category,
        incident_subcategory,
        incident_description,
        category,
        category_group,
        is_category_mapped,
        is_sensitive,
        resolution,
        police_district,
        analysis_neighborhood,
        supervisor_district,
        intersection,
        cnn,
        latitude,
        longitude,
        is_time_imprecise,
        has_coordinates,
        loaded_at

    from offences

)

select * from final
