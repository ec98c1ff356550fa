-- The gateway's initial schema. Portable SQL: it runs unchanged on SQLite and PostgreSQL.
-- Ids are random, time-sortable text; times are Unix seconds; JSON is stored as text.

CREATE TABLE eab_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    hmac_key TEXT NOT NULL,
    label TEXT NOT NULL,
    account_id TEXT,
    revoked BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    jwk_thumbprint TEXT NOT NULL UNIQUE,
    jwk TEXT NOT NULL,
    status TEXT NOT NULL,
    contact TEXT NOT NULL,
    tos_agreed BOOLEAN NOT NULL,
    eab_kid TEXT REFERENCES eab_keys (kid),
    created_at BIGINT NOT NULL
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    status TEXT NOT NULL,
    expires BIGINT NOT NULL,
    identifiers TEXT NOT NULL,
    profile TEXT NOT NULL,
    not_before BIGINT,
    not_after BIGINT,
    error TEXT,
    certificate_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX orders_by_account ON orders (account_id, id);

CREATE TABLE authorizations (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    identifier_type TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    expires BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX authorizations_by_order ON authorizations (order_id);
CREATE INDEX authorizations_by_identifier ON authorizations (account_id, identifier_type, identifier_value, status);

CREATE TABLE challenges (
    id TEXT PRIMARY KEY NOT NULL,
    authz_id TEXT NOT NULL REFERENCES authorizations (id),
    kind TEXT NOT NULL,
    token TEXT NOT NULL,
    status TEXT NOT NULL,
    validated BIGINT,
    error TEXT
);
CREATE INDEX challenges_by_authorization ON challenges (authz_id);

CREATE TABLE certificates (
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
    created_at BIGINT NOT NULL
);
CREATE INDEX certificates_by_order ON certificates (order_id);
CREATE INDEX certificates_by_expiry ON certificates (not_after);
