-- What the staged rows hold, before anything is merged.
SELECT
    count(*) AS rows_staged,
    count(*) - count(DISTINCT row_id) AS duplicate_row_ids,
{%- if window %}
    count(*) FILTER (
        WHERE incident_date < $window_start OR incident_date >= $window_end
        OR CAST(incident_datetime AS DATE) <> incident_date
    ) AS rows_outside_window
{%- else %}
    count(*) FILTER (WHERE CAST(incident_datetime AS DATE) <> incident_date) AS rows_outside_window
{%- endif %}
FROM {{ schema }}.{{ staging }};
