DROP TABLE certificates;
DROP TABLE challenges;
DROP TABLE authorizations;
DROP TABLE orders;
DROP TABLE accounts;
DROP TABLE eab_keys;
