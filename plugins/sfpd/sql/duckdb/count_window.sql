SELECT count(*)
FROM {{ schema }}.{{ table }}
WHERE incident_date >= $window_start AND incident_date < $window_end;
