-- Challenges under validation. A row exists exactly while its challenge is `processing`: it is
-- inserted in the transaction that moves the challenge from `pending`, and deleted in the one
-- that records the outcome, so a process that dies mid-validation leaves a row that another
-- process (or the next start) finds and finishes.
CREATE TABLE validation_jobs (
    challenge_id TEXT PRIMARY KEY NOT NULL REFERENCES challenges (id),
    -- Attempts started, including ones a crash cut short.
    attempts INTEGER NOT NULL,
    -- Which gateway process validates, and until when.
    lease_owner TEXT,
    lease_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX validation_jobs_lease ON validation_jobs (lease_until);
