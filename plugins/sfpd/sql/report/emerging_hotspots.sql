-- The neighborhood x category group cells whose last 28 days are furthest above their
-- baseline (rpt_emerging_hotspots.hotspot_rank), rising ones only.
SELECT
    analysis_neighborhood,
    category_group,
    period_start_date,
    period_end_date,
    recent_report_count,
    expected_report_count,
    hotspot_score,
    includes_sensitive_categories
FROM {{ mart("rpt_emerging_hotspots") }}
WHERE hotspot_rank IS NOT NULL AND hotspot_score > 0
ORDER BY hotspot_rank, analysis_neighborhood, category_group
LIMIT {{ limit }}
