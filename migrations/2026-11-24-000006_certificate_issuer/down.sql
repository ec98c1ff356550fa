ALTER TABLE certificates DROP COLUMN issuer;
