-- Renewal information (RFC 9773). Renewal rules: an officer's window for
-- the certificates of a scope issued before the rule was made. Rules are
-- only inserted and looked up by scope.
CREATE TABLE renewal_rules (
	namespace       text NOT NULL,
	id              text COLLATE "C" NOT NULL,
	scope           text NOT NULL,
	value           text NOT NULL,
	window_start    timestamptz NOT NULL,
	window_end      timestamptz NOT NULL,
	explanation_url text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	created_by      text NOT NULL DEFAULT '',
	PRIMARY KEY (namespace, id)
);
CREATE INDEX renewal_rules_scope ON renewal_rules (namespace, scope, value);

-- The order that claims to replace a certificate (newOrder "replaces"):
-- one per certificate, taken over by compare-and-swap once it is dead.
CREATE TABLE replacement_claims (
	namespace text NOT NULL,
	serial    text COLLATE "C" NOT NULL,
	order_id  text NOT NULL,
	PRIMARY KEY (namespace, serial)
);
