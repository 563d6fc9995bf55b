-- Every copy of a staged row_id the table holds more than once goes; the MERGE then inserts the
-- row once, from staging. (A dataset loaded before 0.3 kept the old copy of a row whose date
-- moved across a window's start.) Scans the raw table's row_id column.
DELETE FROM {{ raw }}
WHERE row_id IN (
    SELECT row_id
    FROM {{ raw }}
    WHERE row_id IN (SELECT row_id FROM {{ staging }})
    GROUP BY row_id
    HAVING COUNT(*) > 1
);
