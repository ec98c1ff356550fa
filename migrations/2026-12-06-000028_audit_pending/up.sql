-- Audit entries written on PostgreSQL, each in the transaction of its change, that wait to be
-- linked into the chain (host/src/store/audit.rs). Linking them in batches keeps concurrent
-- transactions from queueing behind one lock on the chain's head until each one's commit
-- reaches the disk.
CREATE TABLE audit_pending (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    details TEXT NOT NULL,
    mac TEXT NOT NULL
);
