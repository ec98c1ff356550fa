-- Plugins an admin switched on or off (the admin API's enable/disable): obeyed by every
-- replica within a second and by every process after a restart.
CREATE TABLE plugin_switches (
    name TEXT PRIMARY KEY NOT NULL,
    enabled BOOLEAN NOT NULL,
    changed_at BIGINT NOT NULL
);
