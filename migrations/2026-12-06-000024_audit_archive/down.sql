ALTER TABLE audit_head DROP COLUMN archived_seal;
ALTER TABLE audit_head DROP COLUMN archived_mac;
ALTER TABLE audit_head DROP COLUMN archived_seq;
