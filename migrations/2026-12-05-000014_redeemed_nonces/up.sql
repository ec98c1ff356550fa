-- Nonces redeemed on a database that several replicas serve (RFC 8555 §6.5): a nonce is
-- accepted by whichever replica gets it first, exactly once. Rows are kept until the nonce
-- would have expired anyway, then pruned.
CREATE TABLE redeemed_nonces (
    nonce TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX redeemed_nonces_expiry ON redeemed_nonces (expires_at);
