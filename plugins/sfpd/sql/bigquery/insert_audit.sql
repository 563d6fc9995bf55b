-- One row per load; run_id (free text from Airflow), counts and times are query parameters.
INSERT INTO {{ audit }} (
    run_id, window_start, window_end, rows_read, rows_rejected, rows_inserted, rows_updated,
    rows_deleted, loaded_at, kind, source_updated_through,
    source_rows_updated_at
) VALUES (
    @run_id, @window_start, @window_end, @rows_read, @rows_rejected, @rows_inserted,
    @rows_updated, @rows_deleted, @loaded_at, @kind, @source_updated_through,
    @source_rows_updated_at
);
