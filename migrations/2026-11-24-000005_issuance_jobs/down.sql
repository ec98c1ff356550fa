DROP TABLE issuance_jobs;
