-- The neighborhood x day x hour cells furthest above what the city's weekly rhythm expects of
-- them, among cells with the minimum count (rpt_hotspots_by_neighborhood.hotspot_rank).
SELECT
    analysis_neighborhood,
    day_of_week,
    incident_hour,
    report_count,
    expected_report_count,
    hotspot_score,
    includes_sensitive_categories
FROM {{ mart("rpt_hotspots_by_neighborhood") }}
WHERE hotspot_rank IS NOT NULL
ORDER BY hotspot_rank, analysis_neighborhood, day_of_week_number, incident_hour
LIMIT {{ limit }}
