-- One row per report (incident_id), described by its primary offence: the most severe
-- category group, then the lowest incident_code, then row_id, so the choice is deterministic.
-- Built from the offence fact, by month like it (macros/incremental_months.sql): a report's
-- offences share its incident date (the source gives the report's date on each of its rows:
-- in the bundled December 2018 export, 9,749 reports, none with two dates), so a month's
-- reports are made from that month's offences alone.
{{ config(**by_month_config('incident_date', ['police_district', 'primary_category_group'])) }}

{%- set months = months_to_rebuild() %}

with

offences as (

    select * from {{ ref('fct_incident_offences') }}
    where {{ in_months('incident_date', months) }}

),

category_groups as (

    select * from {{ ref('category_groups') }}

),

ranked as (

    select
        offences.*,
        row_number() over (
            partition by offences.incident_id
            order by category_groups.severity_rank, offences.incident_code, offences.row_id
        ) as offence_rank,
        count(*) over (partition by offences.incident_id) as offence_count,
        max(case when offences.is_sensitive then 1 else 0 end) over (
            partition by offences.incident_id
        ) = 1 as has_sensitive_offence,
        max(offences.loaded_through) over () as input_loaded_through

    from offences
    left join category_groups on offences.category_group = category_groups.category_group

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
        row_id as primary_row_id,
        incident_code as primary_incident_code,
        incident_category as primary_incident_category,
        category as primary_category,
        category_group as primary_category_group,
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
        has_coordinates,
        input_loaded_through as loaded_through

    from ranked
    where offence_rank = 1

)

select * from final
