-- Retention (host/src/store/retention.rs): work done once per interval by whichever replica
-- claims it first. A claim is a compare-and-set that moves `next_run_at` past now, so of
-- several replicas polling the row exactly one wins each interval; `claimed_by` and
-- `claimed_at` say which process ran it last, for operators.
CREATE TABLE scheduled_tasks (
    name TEXT PRIMARY KEY NOT NULL,
    next_run_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_at BIGINT
);
INSERT INTO scheduled_tasks (name, next_run_at) VALUES ('retention', 0);

-- Pruning finds what expired long enough ago by these, instead of scanning every row.
CREATE INDEX orders_by_expiry ON orders (expires);
CREATE INDEX authorizations_by_expiry ON authorizations (expires);
