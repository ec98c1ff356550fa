-- Admin-issued certificates have no order; they cannot survive the older schema.
CREATE TABLE certificates_v1 (
    id TEXT PRIMARY KEY NOT NULL,
    serial TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    chain_pem TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    status TEXT NOT NULL,
    revoked_at BIGINT,
    revocation_reason INTEGER,
    created_at BIGINT NOT NULL,
    issuer TEXT NOT NULL DEFAULT 'builtin'
);
INSERT INTO certificates_v1 SELECT id, serial, account_id, order_id, chain_pem, identifiers,
    not_before, not_after, status, revoked_at, revocation_reason, created_at, issuer
    FROM certificates WHERE origin = 'acme';
DROP TABLE certificates;
ALTER TABLE certificates_v1 RENAME TO certificates;
CREATE INDEX certificates_by_order ON certificates (order_id);
CREATE INDEX certificates_by_expiry ON certificates (not_after);
