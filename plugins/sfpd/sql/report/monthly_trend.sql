-- Reports per month and category group, citywide.
SELECT
    month_start_date,
    category_group,
    SUM(report_count) AS reports
FROM {{ mart("rpt_monthly_reports_by_district") }}
GROUP BY month_start_date, category_group
ORDER BY month_start_date, category_group
