INSERT INTO {{ schema }}.load_audit (
    run_id, window_start, window_end, rows_read, rows_rejected, rows_inserted, rows_updated,
    rows_deleted, loaded_at, kind, source_updated_through,
    source_rows_updated_at
) VALUES (
    $run_id, $window_start, $window_end, $rows_read, $rows_rejected, $rows_inserted,
    $rows_updated, $rows_deleted, $loaded_at, $kind, $source_updated_through,
    $source_rows_updated_at
);
