-- Audit archiving (host/src/store/audit.rs): entries moved out of the database into archive
-- files leave a checkpoint in the head row, the last archived entry's seq and mac, sealed with
-- the audit key. The chain left in the database verifies from the checkpoint on, and the
-- archive files verify up to it.
ALTER TABLE audit_head ADD COLUMN archived_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN archived_mac TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_head ADD COLUMN archived_seal TEXT NOT NULL DEFAULT '';
