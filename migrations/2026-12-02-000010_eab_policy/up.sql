-- Per-key policy of EAB keys: the names accounts bound with the key may order (JSON array of
-- patterns; empty allows every name) and the profile their orders get (empty: any).
ALTER TABLE eab_keys ADD COLUMN allowed_names TEXT NOT NULL DEFAULT '[]';
ALTER TABLE eab_keys ADD COLUMN profile TEXT NOT NULL DEFAULT '';
