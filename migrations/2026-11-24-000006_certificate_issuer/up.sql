-- Which issuer signed each certificate: revocations go to it, and each issuer's CRL lists only
-- its own certificates. Certificates from before this column came from the built-in CA.
ALTER TABLE certificates ADD COLUMN issuer TEXT NOT NULL DEFAULT 'builtin';
