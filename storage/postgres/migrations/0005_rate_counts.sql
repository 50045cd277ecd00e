-- The counts of the gateway's rate limits, one row per limit, key and
-- window, shared by every instance of a namespace. Rows are deleted by
-- the cleanup once their window has ended.
CREATE TABLE rate_counts (
	namespace    text        NOT NULL,
	name         text        NOT NULL,
	key          text        NOT NULL,
	window_start timestamptz NOT NULL,
	count        integer     NOT NULL,
	expires      timestamptz NOT NULL,
	PRIMARY KEY (namespace, name, window_start, key)
);
CREATE INDEX rate_counts_expires ON rate_counts (namespace, expires);
