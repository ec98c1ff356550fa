ALTER TABLE eab_keys DROP COLUMN profile;
ALTER TABLE eab_keys DROP COLUMN allowed_names;
