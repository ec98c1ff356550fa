DROP TABLE ca_pin;
