-- Instances keep the accounts they read in memory and forget one when it
-- changes: every change to an account row, whatever statement or instance
-- makes it, notifies channel acmegw_accounts with "<namespace> <id>" when
-- its transaction commits, and a TRUNCATE with "*" (forget them all).
CREATE FUNCTION acmegw_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		PERFORM pg_notify('acmegw_accounts', '*');
	ELSE
		PERFORM pg_notify('acmegw_accounts', OLD.namespace || ' ' || OLD.id);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts
	FOR EACH ROW EXECUTE FUNCTION acmegw_account_changed();
CREATE TRIGGER accounts_truncated AFTER TRUNCATE ON accounts
	FOR EACH STATEMENT EXECUTE FUNCTION acmegw_account_changed();
