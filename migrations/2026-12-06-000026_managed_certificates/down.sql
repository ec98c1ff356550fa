DROP TABLE managed_certificates;
