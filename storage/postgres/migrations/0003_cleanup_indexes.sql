-- The cleanup deletes only orders and authorizations that are not valid,
-- so its indexes hold only those: smaller, and no plan can use them for
-- the lookup of a valid authorization (status = 'valid'). With too few
-- statistics, in a new database, generic plans did, scanning every
-- unexpired authorization of the namespace for each new order.
DROP INDEX authzs_expires;
CREATE INDEX authzs_expires ON authzs (namespace, expires) WHERE status <> 'valid';
DROP INDEX orders_expires;
CREATE INDEX orders_expires ON orders (namespace, expires) WHERE status <> 'valid';
