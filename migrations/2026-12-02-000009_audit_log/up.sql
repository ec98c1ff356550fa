-- The hash-chained audit log (host/src/store/audit.rs): append-only entries, each with an HMAC
-- over its contents and the previous entry's mac, and one head row naming the last entry.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_resource ON audit_log (resource);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    mac TEXT NOT NULL,
    seal TEXT NOT NULL
);
-- The empty log. Every append locks and moves this one row.
INSERT INTO audit_head (id, seq, mac, seal) VALUES (1, 0, '', '');
