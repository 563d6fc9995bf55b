-- Refuse to MERGE a staging table with repeated keys or rows outside the window.
SELECT
    count(*) AS rows_staged,
    count(*) - count(DISTINCT row_id) AS duplicate_row_ids,
    count(*) FILTER (
        WHERE incident_datetime < $window_start OR incident_datetime >= $window_end
    ) AS rows_outside_window
FROM {{ schema }}.{{ staging }};
