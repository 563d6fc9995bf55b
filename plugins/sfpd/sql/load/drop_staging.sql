-- After a load's transaction: its staging tables, scratch (a load that failed before leaves
-- them: on DuckDB the next load replaces them, on BigQuery they expire a day after their load).
DROP TABLE IF EXISTS {{ staging }};
DROP TABLE IF EXISTS {{ rejects_staging }};
