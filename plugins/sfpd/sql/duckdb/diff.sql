{% import "_macros.sql" as m -%}
-- What the MERGE will do: rows new to the window, changed, and gone from the source.
WITH target AS (
    SELECT * FROM {{ schema }}.{{ table }}
    WHERE incident_date >= $window_start AND incident_date < $window_end
)
SELECT
    count(*) FILTER (WHERE target.row_id IS NULL) AS rows_inserted,
    count(*) FILTER (
        WHERE target.row_id IS NOT NULL AND source.row_id IS NOT NULL
        AND {{ m.changed(columns) }}
    ) AS rows_updated,
    count(*) FILTER (WHERE source.row_id IS NULL) AS rows_deleted,
    count(target.row_id) AS rows_in_window_before
FROM {{ schema }}.{{ staging }} AS source
FULL OUTER JOIN target ON target.row_id = source.row_id;
