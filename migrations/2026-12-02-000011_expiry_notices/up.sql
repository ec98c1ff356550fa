-- Expiry notices sent (host/src/expiry.rs): per certificate, the smallest threshold in days
-- (30, 14, 7, 0) notifiers have been told about, so that each is sent once, by one replica.
CREATE TABLE expiry_notices (
    serial TEXT PRIMARY KEY NOT NULL,
    days INTEGER NOT NULL,
    sent_at BIGINT NOT NULL
);
