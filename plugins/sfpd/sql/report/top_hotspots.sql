-- The cells furthest above their neighborhood's own mean.
SELECT
    analysis_neighborhood,
    day_of_week,
    incident_hour,
    report_count,
    neighborhood_mean_report_count,
    z_score
FROM {{ marts }}.rpt_hotspots_by_neighborhood
WHERE z_score IS NOT NULL
ORDER BY z_score DESC, report_count DESC, analysis_neighborhood, day_of_week_number, incident_hour
LIMIT {{ limit }}
