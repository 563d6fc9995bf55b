-- Reports (distinct incident_id) and offences per day and police district.
{%- if target.type == 'bigquery' %}
{{ config(
    partition_by={"field": "incident_date", "data_type": "date", "granularity": "month"},
    cluster_by=["police_district"],
) }}
{%- endif %}

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
