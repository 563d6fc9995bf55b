-- What the staged window holds, before anything is merged.
SELECT
    COUNT(*) AS rows_staged,
    COUNT(*) - COUNT(DISTINCT row_id) AS duplicate_row_ids,
    COUNTIF(
        incident_date < DATE '{{ window_start }}' OR incident_date >= DATE '{{ window_end }}'
        OR DATE(incident_datetime) <> incident_date
    ) AS rows_outside_window
FROM `{{ staging }}`;
