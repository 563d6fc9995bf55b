-- Rows in the raw table, and in the window.
SELECT
    count(*) AS rows_in_table,
    count(*) FILTER (
        WHERE incident_datetime >= $window_start AND incident_datetime < $window_end
    ) AS rows_in_window
FROM {{ schema }}.{{ table }};
