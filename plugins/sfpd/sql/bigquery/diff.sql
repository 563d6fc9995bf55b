{% import "_macros.sql" as m -%}
{% import "_scope.sql" as s with context -%}
-- What the MERGE will do: staged rows new to the table, staged rows changed (wherever their old
-- copy is), and the window's rows the source no longer has. Reads the target partitions only.
WITH target AS (
    SELECT * FROM {{ raw }}
    WHERE {{ s.target() }}
)
SELECT
    COUNTIF(target.row_id IS NULL) AS rows_inserted,
    COUNTIF(
        target.row_id IS NOT NULL AND source.row_id IS NOT NULL
        AND {{ m.changed(columns) }}
    ) AS rows_updated,
{%- if window_start %}
    COUNTIF(source.row_id IS NULL AND {{ s.in_window("target.incident_date") }}) AS rows_deleted
{%- else %}
    0 AS rows_deleted
{%- endif %}
FROM {{ staging }} AS source
FULL OUTER JOIN target ON target.row_id = source.row_id;
