-- Every dbt build, on whatever the warehouse holds: the published counts agree with each other.
-- Every raw offence row is in the offence fact once; the report fact's offences are those rows;
-- each report is counted once (in one district and category group) in the daily and in the
-- monthly marts, with its offences. A row here is a mart whose total is off.
with

raw_offences as (

    select count(*) as offences from {{ ref('stg_sfpd__incidents') }}

),

totals as (

    select 'fct_incident_offences' as counted_in, count(*) as reports, count(*) as offences
    from {{ ref('fct_incident_offences') }}

    union all

    select 'fct_incident_reports', count(*), sum(offence_count)
    from {{ ref('fct_incident_reports') }}

    union all

    select 'rpt_daily_reports_by_district', sum(report_count), sum(offence_count)
    from {{ ref('rpt_daily_reports_by_district') }}

    union all

    select 'rpt_monthly_reports_by_district', sum(report_count), sum(offence_count)
    from {{ ref('rpt_monthly_reports_by_district') }}

),

reports as (

    select coalesce(reports, 0) as reports from totals
    where counted_in = 'fct_incident_reports'

)

select totals.counted_in, totals.reports, totals.offences
from totals
cross join raw_offences
cross join reports
where coalesce(totals.offences, 0) != raw_offences.offences
    or (
        totals.counted_in != 'fct_incident_offences'
        and coalesce(totals.reports, 0) != reports.reports
    )
