-- ACME Renewal Information (RFC 9773). An order's `replaces` is the certID (§4.1) of the
-- certificate it renews (§5); that certificate's `replaced_by` names the order, set when the
-- order is created and guarded so that only one live order replaces a certificate.
-- `renew_now_at` moves a certificate's suggested window into the past from that moment (a
-- revocation for key compromise, or an admin's renew-now), `renew_reason` says why
-- (`key-compromise`, `admin`) and `renew_explanation_url` is the page an admin named for it.
ALTER TABLE orders ADD COLUMN replaces TEXT;
ALTER TABLE certificates ADD COLUMN replaced_by TEXT;
ALTER TABLE certificates ADD COLUMN renew_now_at BIGINT;
ALTER TABLE certificates ADD COLUMN renew_reason TEXT;
ALTER TABLE certificates ADD COLUMN renew_explanation_url TEXT;
