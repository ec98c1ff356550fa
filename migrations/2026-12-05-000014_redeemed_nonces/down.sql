DROP TABLE redeemed_nonces;
