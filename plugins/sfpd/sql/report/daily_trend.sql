-- Reports per day and category group, citywide, with the rolling 28-day count.
SELECT
    incident_date,
    category_group,
    SUM(report_count) AS reports,
    SUM(rolling_28d_report_count) AS rolling_28d_reports
FROM {{ mart("rpt_daily_reports_by_district") }}
GROUP BY incident_date, category_group
ORDER BY incident_date, category_group
