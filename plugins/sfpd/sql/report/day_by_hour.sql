-- Reports per day of week and hour, all neighborhoods (precise times only: the z-score's base).
SELECT
    day_of_week_number,
    day_of_week,
    incident_hour,
    SUM(report_count) AS reports
FROM {{ mart("rpt_hotspots_by_neighborhood") }}
GROUP BY day_of_week_number, day_of_week, incident_hour
ORDER BY day_of_week_number, incident_hour
