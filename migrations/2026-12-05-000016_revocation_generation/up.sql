-- Counts revocations, bumped in the revoking transaction: replicas that see it move rebuild
-- their CRL at once instead of waiting for its cache to age out.
CREATE TABLE revocation_generation (
    id INTEGER PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);
INSERT INTO revocation_generation (id, generation) VALUES (1, 0);
