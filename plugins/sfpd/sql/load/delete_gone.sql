{% import "_scope.sql" as s with context -%}
-- A window's rows the source no longer has (sealed records): the window's rows not staged
-- (a catch-up, which has no window, deletes nothing). Literal dates on incident_date bound it
-- to the window (on BigQuery they prune the scan to the window's partitions).
DELETE FROM {{ raw }}
WHERE {% if ranges %}{{ s.in_window() }}{% else %}FALSE{% endif %}
    AND row_id NOT IN (SELECT row_id FROM {{ staging }});
