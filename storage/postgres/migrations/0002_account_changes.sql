-- Instances keep the accounts they read in memory and forget one when it
-- changes: every change to an account row, whatever statement or instance
-- makes it, notifies channel acmegw_accounts with "<namespace> <id>" when
-- its transaction commits.
CREATE FUNCTION acmegw_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('acmegw_accounts', OLD.namespace || ' ' || OLD.id);
	RETURN NULL;
END
$$;

CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts
	FOR EACH ROW EXECUTE FUNCTION acmegw_account_changed();
