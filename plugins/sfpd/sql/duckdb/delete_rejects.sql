-- The window's quarantined rows replace those of an earlier load of the same window.
DELETE FROM {{ schema }}.{{ table }}_rejects
WHERE window_start = $window_start AND window_end = $window_end;
