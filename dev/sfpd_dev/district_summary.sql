-- Reports and offences per police district for a window (what `make run` prints): the window's
-- first day and the day after its last as parameters.
SELECT
    police_district,
    SUM(report_count) AS reports,
    SUM(offence_count) AS offences
FROM sfpd_marts.rpt_daily_reports_by_district
WHERE incident_date >= ? AND incident_date < ?
GROUP BY police_district
ORDER BY reports DESC, police_district
