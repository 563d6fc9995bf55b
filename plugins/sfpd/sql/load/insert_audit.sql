{% import "_dialect/" ~ dialect ~ ".sql" as d -%}
-- One row per load (or catch-up check); run_id (free text from Airflow), counts and times are
-- query parameters (sfpd.warehouse.records.audit_parameters).
INSERT INTO {{ audit }} ({{ audit_columns | join(", ") }})
VALUES ({% for name in audit_columns %}{{ d.param(name) }}{{ ", " if not loop.last }}{% endfor %});
