-- One row per load; run_id (free text from Airflow) and counts are query parameters.
INSERT INTO `{{ audit }}` (
    run_id, window_start, window_end, rows_read, rows_rejected,
    rows_inserted, rows_updated, rows_deleted, loaded_at
) VALUES (
    @run_id, DATE '{{ window_start }}', DATE '{{ window_end }}', @rows_read, @rows_rejected,
    @rows_inserted, @rows_updated, @rows_deleted, TIMESTAMP '{{ loaded_at }}'
);
