ALTER TABLE certificates DROP COLUMN renew_explanation_url;
ALTER TABLE certificates DROP COLUMN renew_reason;
ALTER TABLE certificates DROP COLUMN renew_now_at;
ALTER TABLE certificates DROP COLUMN replaced_by;
ALTER TABLE orders DROP COLUMN replaces;
