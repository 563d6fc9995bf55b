{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
{% import "_scope.sql" as s with context -%}
-- What the staged rows hold, before anything is merged: rows outside the window, or whose
-- incident_date is not their incident_datetime's date, are refused.
{%- set outside = ("NOT (" ~ s.in_window() ~ ") OR " if ranges else "")
    ~ d.to_date("incident_datetime") ~ " <> incident_date" %}
SELECT
    COUNT(*) AS rows_staged,
    COUNT(*) - COUNT(DISTINCT row_id) AS duplicate_row_ids,
    {{ d.countif(outside) }} AS rows_outside_window
FROM {{ staging }};
