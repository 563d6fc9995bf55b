-- Share of reports cited or arrested and cleared, per category (all years), largest first.
SELECT
    category,
    category_group,
    SUM(report_count) AS reports,
    SUM(cited_or_arrested_count) / SUM(report_count) AS cited_or_arrested_rate,
    SUM(cited_or_arrested_count + exceptional_count) / SUM(report_count) AS cleared_rate
FROM {{ mart("rpt_resolution_rates_by_category") }}
GROUP BY category, category_group
ORDER BY reports DESC, category
LIMIT {{ limit }}
