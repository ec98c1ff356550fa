DROP TABLE validation_jobs;
