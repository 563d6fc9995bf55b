{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
-- Where the next catch-up starts: the source_updated_through the last catch-up recorded;
-- before the first one, the earliest any load recorded (NULL: none did).
SELECT COALESCE(
    {{ d.max_if("source_updated_through", "kind = 'catch-up'") }},
    MIN(source_updated_through)
)
FROM {{ audit }};
