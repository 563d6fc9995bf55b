-- One row per offence (row_id), with the canonical category and its group, and flags for the
-- data's known imprecisions.
with

offences as (

    select * from {{ ref('stg_sfpd__incidents') }}

),

categories as (

    select * from {{ ref('incident_categories') }}

),

category_groups as (

    select * from {{ ref('category_groups') }}

),

categorised as (

    select
        offences.*,
        coalesce(categories.category, offences.incident_category, 'Unknown') as category,
        coalesce(categories.category_group, 'other') as category_group,
        category_groups.severity_rank as category_severity_rank,
        categories.incident_category is not null as is_category_mapped,
        coalesce(categories.is_sensitive, false) as is_sensitive,
        {{ day_of_week_number('offences.incident_date') }} as day_of_week_number,
        extract(hour from offences.incident_at) as incident_hour,
        -- officers record unknown times as midnight or noon: those hours are heaped
        extract(minute from offences.incident_at) = 0
        and extract(hour from offences.incident_at) in (0, 12) as is_time_imprecise,
        offences.latitude is not null and offences.longitude is not null as has_coordinates

    from offences
    left join categories
        on offences.incident_category = categories.incident_category
    -- an unmapped label counts as 'other' (and is_category_mapped flags it)
    left join category_groups
        on coalesce(categories.category_group, 'other') = category_groups.category_group

)

select * from categorised
