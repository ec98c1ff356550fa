-- The CA a database belongs to, by the SHA-256 of its root and intermediate certificates: the
-- first gateway to start on the database pins its CA; every later one (another replica, a
-- restart with a lost data directory) must present the same CA or refuse to start, so one
-- database never gets a second CA.
CREATE TABLE ca_pin (
    id INTEGER PRIMARY KEY NOT NULL,
    root_sha256 TEXT NOT NULL,
    intermediate_sha256 TEXT NOT NULL,
    pinned_at BIGINT NOT NULL
);
