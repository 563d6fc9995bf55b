{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
{% import "_scope.sql" as s with context -%}
-- Where the raw table holds the staged row_ids now, as far as the MERGE must look beyond the
-- window: the dates of copies outside it (rows whose date moved upstream; a catch-up, which has
-- no window, every copy's) and of copies held more than once (dedupe.sql removes those first).
-- Must scan the raw table's row_id and incident_date: a staged row can be at any date.
SELECT incident_date, {{ d.countif("copies > 1") }} > 0 AS repeated
FROM (
    SELECT incident_date, COUNT(*) OVER (PARTITION BY row_id) AS copies
    FROM {{ raw }}
    WHERE row_id IN (SELECT row_id FROM {{ staging }})
) AS copies
{%- if ranges %}
WHERE copies > 1 OR NOT ({{ s.in_window() }})
{%- endif %}
GROUP BY incident_date
ORDER BY incident_date;
