-- Where the next catch-up starts: the source time the last catch-up read through; before the
-- first one, the earliest read of any load that recorded it (NULL: none did).
SELECT coalesce(
    max(source_updated_through) FILTER (WHERE kind = 'catch-up'),
    min(source_updated_through)
)
FROM {{ audit }};
