-- Answered from table metadata: no bytes scanned.
SELECT COUNT(*) FROM `{{ raw }}`;
