-- acmegw:no-transaction
-- The cleanup deletes only orders and authorizations that are not valid,
-- so its indexes hold only those: smaller, and no plan can use them for
-- the lookup of a valid authorization (status = 'valid'). With too few
-- statistics, in a new database, generic plans used (namespace, expires)
-- and scanned every unexpired authorization of the namespace for each new
-- order. CONCURRENTLY, so that instances still serving are not blocked
-- while the indexes build; each statement may run again after a failure
-- (a failed build leaves an invalid index, dropped by the next attempt).
DROP INDEX CONCURRENTLY IF EXISTS authzs_cleanup;
CREATE INDEX CONCURRENTLY authzs_cleanup ON authzs (namespace, expires) WHERE status <> 'valid';
DROP INDEX CONCURRENTLY IF EXISTS authzs_expires;
DROP INDEX CONCURRENTLY IF EXISTS orders_cleanup;
CREATE INDEX CONCURRENTLY orders_cleanup ON orders (namespace, expires) WHERE status <> 'valid';
DROP INDEX CONCURRENTLY IF EXISTS orders_expires;
