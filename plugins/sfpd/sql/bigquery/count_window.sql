-- Rows of the raw table in the window's partitions (scans only those).
SELECT COUNT(*)
FROM `{{ raw }}`
WHERE incident_date >= DATE '{{ window_start }}' AND incident_date < DATE '{{ window_end }}';
