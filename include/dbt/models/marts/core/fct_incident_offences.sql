-- One row per offence (row_id). Incremental on the run's window: the window's date partitions
-- are replaced whole (BigQuery insert_overwrite with the window's static partitions; DuckDB
-- deletes the window's dates in a pre-hook and appends), so rows removed upstream leave too.
-- A MERGE on row_id could not remove them. --full-refresh rebuilds from the whole raw table.
{{ config(
    materialized='incremental',
    incremental_strategy=('insert_overwrite' if target.type == 'bigquery' else 'append'),
    partition_by=(
        {'field': 'incident_date', 'data_type': 'date', 'granularity': 'day'}
        if target.type == 'bigquery' else none
    ),
    partitions=(window_partitions() if target.type == 'bigquery' else none),
    cluster_by=(['police_district', 'category_group'] if target.type == 'bigquery' else none),
    pre_hook=(
        "{% if is_incremental() %}delete from {{ this }} where incident_date >= date '"
        ~ "{{ window_bound('window_start') }}' and incident_date < date '"
        ~ "{{ window_bound('window_end') }}'{% endif %}"
        if target.type != 'bigquery' else []
    ),
    on_schema_change='fail',
) }}

with

offences as (

    select * from {{ ref('int_incident_offences__categorised') }}

    {% if is_incremental() %}
        where
            incident_date >= date '{{ window_bound("window_start") }}'
            and incident_date < date '{{ window_bound("window_end") }}'
    {% endif %}

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
