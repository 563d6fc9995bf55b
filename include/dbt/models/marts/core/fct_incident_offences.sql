-- One row per offence (row_id). Incremental by month (macros/incremental_months.sql): a
-- daily build reads from the raw table only the months the loads since the last build touched
-- (rows change upstream at any date: a load records the old months of rows that moved too),
-- and replaces those months whole. Partitioned by month and clustered on BigQuery (the YAML
-- says why).
{{ config(**by_month_config('incident_date', ['police_district', 'category_group'])) }}

{%- set months = months_to_rebuild() %}

with

offences as (

    select * from {{ ref('int_incident_offences__categorised') }}
    where {{ in_months('incident_date', months) }}

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
        loaded_at,
        (select max(loads.loaded_at) from {{ source('sfpd', 'load_audit') }} as loads)
            as loaded_through

    from offences

)

select * from final
