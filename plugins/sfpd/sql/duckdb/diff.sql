{% import "_macros.sql" as m -%}
-- What the MERGE will do: staged rows new to the table, staged rows changed (wherever their old
-- copy is: a row whose date moved is updated in place), and the window's rows the source no
-- longer has (none without a window).
WITH target AS (
    SELECT * FROM {{ schema }}.{{ table }}
    WHERE row_id IN (SELECT row_id FROM {{ schema }}.{{ staging }})
{%- if window %}
        OR (incident_date >= $window_start AND incident_date < $window_end)
{%- endif %}
)
SELECT
    count(*) FILTER (WHERE target.row_id IS NULL) AS rows_inserted,
    count(*) FILTER (
        WHERE target.row_id IS NOT NULL AND source.row_id IS NOT NULL
        AND {{ m.changed(columns) }}
    ) AS rows_updated,
    count(*) FILTER (WHERE source.row_id IS NULL) AS rows_deleted
FROM {{ schema }}.{{ staging }} AS source
FULL OUTER JOIN target ON target.row_id = source.row_id;
