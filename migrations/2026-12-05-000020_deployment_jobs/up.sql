-- Deployments of issued certificates to the operator's targets, one row per certificate and
-- target while the deployment is owed. A row is inserted in the transaction that stores the
-- certificate, so a process that dies after issuing still owes the deployment, and deleted in
-- the one that audits the outcome (deployed, or failed for good).
CREATE TABLE deployment_jobs (
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    target TEXT NOT NULL,
    -- Attempts made so far (each a deploy and, when the target asks for it, a verify).
    attempts INTEGER NOT NULL,
    -- When the job may next be claimed; while an attempt runs, the end of its lease.
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL,
    -- The deployment carries a private key the gateway generated. Keys are never stored: only
    -- the process that generated it can deploy it, and a job that outlives that process fails.
    with_key BOOLEAN NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (certificate_id, target)
);
CREATE INDEX deployment_jobs_due ON deployment_jobs (next_attempt_at);
