-- Certificates the gateway keeps for services that run no ACME client: it generates the key,
-- issues, deploys to the named targets and renews on its own. One row per managed
-- certificate, declared in the config file (`[[managed]]`, upserted at start) or over the
-- admin API. The row is the durable schedule: whoever works on it holds a lease, so across
-- replicas each renewal is done once.
CREATE TABLE managed_certificates (
    name TEXT PRIMARY KEY,
    -- JSON array of DNS names and IP addresses.
    names TEXT NOT NULL,
    profile TEXT NOT NULL,
    key_type TEXT NOT NULL,
    -- JSON array of `[[targets]]` names.
    targets TEXT NOT NULL,
    -- Renew at this percentage of the lifetime; NULL: in the certificate's ARI window.
    renew_at_percent INTEGER,
    -- `active` or `paused`.
    state TEXT NOT NULL,
    -- Declared in the config file (the next start declares it again) rather than by an admin.
    declared BOOLEAN NOT NULL,
    -- When the row is next due: the renewal, or the retry of a failed attempt.
    next_renewal_at BIGINT NOT NULL,
    -- The current certificate, and its private key sealed (AES-256-GCM under a key derived
    -- from the CA key secret): never in the database in clear.
    certificate_serial TEXT,
    sealed_key TEXT,
    -- When the current certificate is to be renewed, on the gateway's clock.
    renew_at BIGINT,
    -- The certificate every target last received; behind `certificate_serial` while a
    -- deployment is owed.
    deployed_serial TEXT,
    -- JSON: when and what the last deployment came to, target by target.
    last_deployment TEXT,
    -- Consecutive failed attempts, and why the last one failed.
    failures INTEGER NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX managed_certificates_due ON managed_certificates (next_renewal_at);
