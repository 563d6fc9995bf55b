-- Reports per neighborhood and day of week (all times, precise or not).
SELECT
    analysis_neighborhood,
    day_of_week_number,
    day_of_week,
    SUM(report_count + imprecise_time_report_count) AS reports
FROM {{ mart("rpt_hotspots_by_neighborhood") }}
GROUP BY analysis_neighborhood, day_of_week_number, day_of_week
ORDER BY analysis_neighborhood, day_of_week_number
