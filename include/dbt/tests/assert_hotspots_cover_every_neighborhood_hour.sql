-- Every dbt build: the hotspot mart has all 7 x 24 = 168 day-and-hour cells of each of the
-- city's analysis neighborhoods (zeros included, so a dashboard's heatmap has no holes), and the
-- expected counts spread each neighborhood's reports over its cells. A row here is a
-- neighborhood whose cells are missing, repeated or do not add up.
with

cells as (

    select
        analysis_neighborhood,
        count(*) as cells,
        sum(report_count) as reports,
        sum(expected_report_count) as expected_reports
    from {{ ref('rpt_hotspots_by_neighborhood') }}
    group by analysis_neighborhood

)

select
    neighborhoods.analysis_neighborhood,
    coalesce(cells.cells, 0) as cells,
    cells.reports,
    cells.expected_reports
from {{ ref('analysis_neighborhoods') }} as neighborhoods
left join cells on cells.analysis_neighborhood = neighborhoods.analysis_neighborhood
where coalesce(cells.cells, 0) != 168
    or abs(cells.expected_reports - cells.reports) > 0.01
