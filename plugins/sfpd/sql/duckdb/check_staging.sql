-- What the staged window holds, before anything is merged.
SELECT
    count(*) AS rows_staged,
    count(*) - count(DISTINCT row_id) AS duplicate_row_ids,
    count(*) FILTER (
        WHERE incident_date < $window_start OR incident_date >= $window_end
        OR CAST(incident_datetime AS DATE) <> incident_date
    ) AS rows_outside_window
FROM {{ schema }}.{{ staging }};
