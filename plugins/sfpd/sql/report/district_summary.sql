{% import "_scope.sql" as s with context -%}
-- Reports and offences per police district for a window (what `make run` prints).
SELECT
    police_district,
    SUM(report_count) AS reports,
    SUM(offence_count) AS offences
FROM {{ mart("rpt_daily_reports_by_district") }}
WHERE {{ s.in_window() }}
GROUP BY police_district
ORDER BY reports DESC, police_district
