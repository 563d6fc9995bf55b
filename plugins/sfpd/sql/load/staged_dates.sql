-- The incident dates of the staged rows: the partitions this load's inserts and updates land in.
SELECT DISTINCT incident_date FROM {{ staging }} ORDER BY incident_date;
