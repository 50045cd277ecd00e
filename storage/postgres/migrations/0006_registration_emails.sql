-- The e-mail addresses an officer vouches for, which alone may go into a
-- registered account's certificates (add_account_contact_email).
ALTER TABLE registrations ADD COLUMN emails text[];
