-- The date windows loaded so far: the days the raw table claims to hold completely.
SELECT DISTINCT window_start, window_end
FROM {{ audit }}
WHERE window_start IS NOT NULL;
