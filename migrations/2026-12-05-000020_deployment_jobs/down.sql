DROP TABLE deployment_jobs;
