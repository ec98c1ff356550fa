-- Plugins' key-value state (the `state` capability), kept across restarts and shared by the
-- replicas. Values are sealed with AES-256-GCM under a key derived from the CA key secret,
-- bound to their plugin and key, so the database alone reveals nothing a plugin stored.
CREATE TABLE plugin_state (
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    -- base64 of nonce || ciphertext || tag.
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, key)
);
