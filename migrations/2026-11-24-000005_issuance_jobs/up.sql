-- Finalized orders waiting for (or being served by) their issuer. A row exists exactly while its
-- order is `processing`; it is deleted in the transaction that makes the order valid or invalid.
CREATE TABLE issuance_jobs (
    order_id TEXT PRIMARY KEY NOT NULL REFERENCES orders (id),
    -- Name of the issuer that serves the order's profile ("builtin" or a plugin).
    issuer TEXT NOT NULL,
    -- The finalize CSR, DER in base64url: a retry after a restart needs it.
    csr TEXT NOT NULL,
    -- Failed attempts so far.
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- The issuer's handle for a request it accepted but has not completed (poll it, never
    -- issue again).
    handle TEXT,
    -- Which gateway process works on the job, and until when; a lease that ran out (crash)
    -- lets another process or the next start take the job over.
    lease_owner TEXT,
    lease_until BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX issuance_jobs_due ON issuance_jobs (next_attempt_at);
