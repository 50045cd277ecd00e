-- The gateway's records. Every table is keyed by namespace (a gateway's
-- name) first, so that several gateways share a database and every index
-- serves one gateway's lookups. Ids sort by their bytes (COLLATE "C"), as
-- listings promise whatever the database's locale. Nullable columns hold optional values:
-- NULL times are Go's zero time, NULL arrays and bytes are nil.

-- nonce_keys holds each namespace's nonce MAC key, shared by its instances.
CREATE TABLE nonce_keys (
	namespace  text PRIMARY KEY,
	key        bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- nonces_used remembers redeemed nonces until they expire (and a margin
-- for clock skew); the primary key makes a nonce single-use.
CREATE TABLE nonces_used (
	namespace text NOT NULL,
	nonce     bytea NOT NULL,
	expires   timestamptz NOT NULL,
	PRIMARY KEY (namespace, nonce)
);
CREATE INDEX nonces_used_expires ON nonces_used (namespace, expires);

CREATE TABLE accounts (
	namespace       text NOT NULL,
	id              text COLLATE "C" NOT NULL,
	key_thumbprint  text NOT NULL,
	key_jwk         bytea,
	contact         text[],
	status          text NOT NULL,
	created_at      timestamptz NOT NULL,
	registration_id text NOT NULL,
	version         bigint NOT NULL,
	PRIMARY KEY (namespace, id),
	UNIQUE (namespace, key_thumbprint)
);
CREATE INDEX accounts_created ON accounts (namespace, created_at, id);

CREATE TABLE orders (
	namespace          text NOT NULL,
	id                 text COLLATE "C" NOT NULL,
	account_id         text NOT NULL,
	status             text NOT NULL,
	identifiers        jsonb,
	authz_ids          text[],
	not_before         timestamptz,
	not_after          timestamptz,
	expires            timestamptz NOT NULL,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL,
	certificate_serial text NOT NULL,
	issuer_ref         text NOT NULL,
	csr                bytea,
	error              bytea, -- the problem document's bytes, as given
	version            bigint NOT NULL,
	PRIMARY KEY (namespace, id)
);
CREATE INDEX orders_by_account ON orders (namespace, account_id, created_at, id);
CREATE INDEX orders_expires ON orders (namespace, expires);

CREATE TABLE authzs (
	namespace   text NOT NULL,
	id          text COLLATE "C" NOT NULL,
	account_id  text NOT NULL,
	ident_type  text NOT NULL,
	ident_value text NOT NULL,
	wildcard    boolean NOT NULL,
	status      text NOT NULL,
	expires     timestamptz NOT NULL,
	challenges  jsonb,
	version     bigint NOT NULL,
	PRIMARY KEY (namespace, id)
);
CREATE INDEX authzs_valid ON authzs (namespace, account_id, ident_type, ident_value, wildcard, expires)
	WHERE status = 'valid';
CREATE INDEX authzs_expires ON authzs (namespace, expires);

CREATE TABLE certificates (
	namespace         text NOT NULL,
	serial            text COLLATE "C" NOT NULL,
	account_id        text NOT NULL,
	order_id          text NOT NULL,
	names             text[],
	not_before        timestamptz NOT NULL,
	not_after         timestamptz NOT NULL,
	chain_pem         bytea,
	status            text NOT NULL,
	revoked_at        timestamptz,
	revocation_reason integer NOT NULL,
	issued_at         timestamptz NOT NULL,
	version           bigint NOT NULL,
	PRIMARY KEY (namespace, serial)
);
CREATE INDEX certificates_issued ON certificates (namespace, issued_at, serial);
CREATE INDEX certificates_by_account ON certificates (namespace, account_id, issued_at, serial);

CREATE TABLE registrations (
	namespace       text NOT NULL,
	key_id          text COLLATE "C" NOT NULL,
	hmac_key        bytea,
	description     text NOT NULL,
	allowed_domains text[],
	expires         timestamptz,
	status          text NOT NULL,
	account_id      text NOT NULL, -- '' until a client binds it
	procedure       text NOT NULL,
	created_at      timestamptz NOT NULL,
	created_by      text NOT NULL,
	updated_at      timestamptz NOT NULL,
	updated_by      text NOT NULL,
	version         bigint NOT NULL,
	PRIMARY KEY (namespace, key_id)
);

CREATE TABLE audit (
	namespace text NOT NULL,
	id        text COLLATE "C" NOT NULL,
	time      timestamptz NOT NULL,
	actor     text NOT NULL,
	action    text NOT NULL,
	target    text NOT NULL,
	detail    bytea, -- JSON, kept byte for byte
	PRIMARY KEY (namespace, id)
);
CREATE INDEX audit_time ON audit (namespace, time, id);
