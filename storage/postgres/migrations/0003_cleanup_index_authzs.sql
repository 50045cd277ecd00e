-- acmegw:no-transaction
-- The cleanup deletes only orders and authorizations that are not valid,
-- so its indexes hold only those (this one and 0004's): smaller, and no
-- plan can use them for the lookup of a valid authorization (status =
-- 'valid'). With too few statistics, in a new database, generic plans used
-- (namespace, expires) and scanned every unexpired authorization of the
-- namespace for each new order. CONCURRENTLY, so that instances still
-- serving are not blocked while the index builds; each statement may run
-- again after a failure (a failed build leaves an invalid index, which the
-- first statement drops).
DROP INDEX CONCURRENTLY IF EXISTS authzs_cleanup;
CREATE INDEX CONCURRENTLY authzs_cleanup ON authzs (namespace, expires) WHERE status <> 'valid';
DROP INDEX CONCURRENTLY IF EXISTS authzs_expires;
