-- Certificate profiles: the profile an order was placed and a certificate
-- issued under, and the profiles a registration allows (NULL: all).
-- Renewals (RFC 9773): the certificate an order or certificate replaces,
-- and the one that replaced a certificate.
ALTER TABLE orders
	ADD COLUMN profile text NOT NULL DEFAULT '',
	ADD COLUMN replaces text NOT NULL DEFAULT '';
ALTER TABLE certificates
	ADD COLUMN profile text NOT NULL DEFAULT '',
	ADD COLUMN replaces text NOT NULL DEFAULT '',
	ADD COLUMN replaced_by text NOT NULL DEFAULT '';
ALTER TABLE registrations ADD COLUMN profiles text[];
