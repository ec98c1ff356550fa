-- Certificates issued through the admin API (from a CSR, with a generated key, or as admin
-- and client identities for the API itself) belong to no ACME account or order. SQLite cannot
-- drop NOT NULL in place, so the table is rebuilt (the same statements serve PostgreSQL).
CREATE TABLE certificates_v2 (
    id TEXT PRIMARY KEY NOT NULL,
    serial TEXT NOT NULL UNIQUE,
    account_id TEXT REFERENCES accounts (id),
    order_id TEXT REFERENCES orders (id),
    chain_pem TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    status TEXT NOT NULL,
    revoked_at BIGINT,
    revocation_reason INTEGER,
    created_at BIGINT NOT NULL,
    issuer TEXT NOT NULL DEFAULT 'builtin',
    -- "acme" (an order), "admin" (the admin API), "identity" (an admin API client identity).
    origin TEXT NOT NULL DEFAULT 'acme',
    -- Subject common name of admin-issued certificates; empty for ACME ones.
    subject TEXT NOT NULL DEFAULT ''
);
INSERT INTO certificates_v2 (id, serial, account_id, order_id, chain_pem, identifiers, not_before,
    not_after, status, revoked_at, revocation_reason, created_at, issuer)
SELECT id, serial, account_id, order_id, chain_pem, identifiers, not_before, not_after, status,
    revoked_at, revocation_reason, created_at, issuer FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v2 RENAME TO certificates;
CREATE INDEX certificates_by_order ON certificates (order_id);
CREATE INDEX certificates_by_expiry ON certificates (not_after);
