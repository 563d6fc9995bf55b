-- What the marts cover and when the raw rows were last written.
SELECT
    MIN(incident_date) AS first_incident_date,
    MAX(incident_date) AS last_incident_date,
    COUNT(*) AS offences,
    COUNT(DISTINCT incident_id) AS reports,
    MAX(loaded_at) AS last_loaded_at
FROM {{ mart("fct_incident_offences") }}
