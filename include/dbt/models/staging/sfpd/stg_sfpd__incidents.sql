with

source as (

    select * from {{ source('sfpd', 'incidents') }}

),

renamed as (

    select
        -- ids
        row_id,
        incident_id,
        incident_number,
        cad_number,

        -- when (floating San Francisco local times)
        incident_datetime as incident_at,
        incident_date,
        incident_time,
        incident_year,
        incident_day_of_week,
        report_datetime as reported_at,

        -- what
        report_type_code,
        report_type_description,
        -- the API omits filed_online unless it is true
        coalesce(filed_online, false) as is_filed_online,
        incident_code,
        trim(incident_category) as incident_category,
        trim(incident_subcategory) as incident_subcategory,
        trim(incident_description) as incident_description,
        resolution,

        -- where
        intersection,
        cnn,
        police_district,
        analysis_neighborhood,
        supervisor_district,
        supervisor_district_2012,
        latitude,
        longitude,

        -- source system and pipeline
        data_as_of,
        data_loaded_at,
        _loaded_at as loaded_at

    from source

)

select * from renamed
