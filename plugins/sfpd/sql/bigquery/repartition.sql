{% import "_macros.sql" as m -%}
-- Once, for a raw table an earlier version made partitioned by day (a day's partition is
-- ~100 kB, and a job may modify at most 4,000 partitions): the same rows in a table
-- partitioned by month (create_tables.sql), swapped in. DDL cannot be in a transaction: if this
-- stops after the DROP, the next run finds the copy and only renames it (`finish`).
{%- if not finish %}
CREATE OR REPLACE TABLE {{ repartitioned }}
PARTITION BY DATE_TRUNC(incident_date, MONTH)
CLUSTER BY {{ cluster_by | join(", ") }}
AS SELECT * FROM {{ raw }};
DROP TABLE {{ raw }};
{%- endif %}
ALTER TABLE {{ repartitioned }} RENAME TO {{ raw_name }};
