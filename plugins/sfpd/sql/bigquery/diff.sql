{% import "_macros.sql" as m -%}
-- What the MERGE will do: rows new to the window, changed, and gone from the source. Reads only
-- the window's partitions of the raw table.
WITH target AS (
    SELECT * FROM `{{ raw }}`
    WHERE incident_date >= DATE '{{ window_start }}' AND incident_date < DATE '{{ window_end }}'
)
SELECT
    COUNTIF(target.row_id IS NULL) AS rows_inserted,
    COUNTIF(
        target.row_id IS NOT NULL AND source.row_id IS NOT NULL
        AND {{ m.changed(columns) }}
    ) AS rows_updated,
    COUNTIF(source.row_id IS NULL) AS rows_deleted,
    COUNT(target.row_id) AS rows_in_window_before
FROM `{{ staging }}` AS source
FULL OUTER JOIN target ON target.row_id = source.row_id;
