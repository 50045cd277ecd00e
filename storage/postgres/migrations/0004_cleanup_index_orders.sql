-- acmegw:no-transaction
-- The cleanup's index of orders holds only those it deletes, as 0003 did
-- for authorizations.
DROP INDEX CONCURRENTLY IF EXISTS orders_cleanup;
CREATE INDEX CONCURRENTLY orders_cleanup ON orders (namespace, expires) WHERE status <> 'valid';
DROP INDEX CONCURRENTLY IF EXISTS orders_expires;
