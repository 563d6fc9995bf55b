{% import "_scope.sql" as s with context -%}
-- Every copy of a staged row_id the table holds more than once goes (`dates`: where such
-- copies are, from moved_dates.sql, so only those partitions are read); the MERGE then inserts
-- the row once, from staging. (A warehouse loaded by an earlier version may hold the old copy
-- of a row whose date moved across a window's start.) Runs only when there are such copies.
DELETE FROM {{ raw }}
WHERE {{ s.in_dates("incident_date", dates) }}
    AND row_id IN (
        SELECT row_id
        FROM {{ raw }}
        WHERE {{ s.in_dates("incident_date", dates) }}
            AND row_id IN (SELECT row_id FROM {{ staging }})
        GROUP BY row_id
        HAVING COUNT(*) > 1
    );
