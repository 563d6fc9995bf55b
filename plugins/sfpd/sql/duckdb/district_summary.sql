-- Reports and offences per police district for a window, from the dbt mart.
SELECT
    police_district,
    sum(report_count) AS reports,
    sum(offence_count) AS offences
FROM sfpd_marts.rpt_daily_reports_by_district
WHERE incident_date >= $window_start AND incident_date < $window_end
GROUP BY police_district
ORDER BY reports DESC, police_district;
