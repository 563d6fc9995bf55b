-- Where the next catch-up starts: the source time the last catch-up read through; before the
-- first one, the earliest read of any load that recorded it (NULL: none did).
SELECT COALESCE(
    MAX(IF(kind = 'catch-up', source_updated_through, NULL)),
    MIN(source_updated_through)
)
FROM {{ audit }};
