-- One row per gateway process that rewrites it on every readiness check: a check that the
-- database takes writes (not only reads) before a load balancer sends traffic.
CREATE TABLE write_probe (
    owner TEXT PRIMARY KEY NOT NULL,
    checked_at BIGINT NOT NULL
);
