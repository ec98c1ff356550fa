DROP INDEX authorizations_by_expiry;
DROP INDEX orders_by_expiry;
DROP TABLE scheduled_tasks;
