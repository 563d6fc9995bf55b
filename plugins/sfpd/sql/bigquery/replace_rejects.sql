-- The window's quarantined rows (loaded into rejects staging) replace an earlier load's.
DELETE FROM `{{ rejects }}`
WHERE window_start = DATE '{{ window_start }}' AND window_end = DATE '{{ window_end }}';
INSERT INTO `{{ rejects }}` (window_start, window_end, raw_json, reason, _rejected_at)
SELECT DATE '{{ window_start }}', DATE '{{ window_end }}', raw_json, reason,
    TIMESTAMP '{{ loaded_at }}'
FROM `{{ rejects_staging }}`;
