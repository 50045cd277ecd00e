package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

const registrationColumns = `key_id, hmac_key, description, allowed_domains, expires, status, account_id, procedure,
	created_at, created_by, updated_at, updated_by, version, emails, profiles`

func scanRegistration(row pgx.Row) (*storage.Registration, error) {
	var (
		r       storage.Registration
		expires pgtype.Timestamptz
	)
	err := row.Scan(&r.KeyID, &r.HMACKey, &r.Description, &r.AllowedDomains, &expires, &r.Status, &r.AccountID, &r.Procedure,
		&r.CreatedAt, &r.CreatedBy, &r.UpdatedAt, &r.UpdatedBy, &r.Version, &r.Emails, &r.Profiles)
	if err != nil {
		return nil, err
	}
	r.Expires = fromNull(expires)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

// registrationSet writes what may change of a registration, from
// registrationArgs at $4 on: all but the key id and creation time.
const registrationSet = `hmac_key = $4, description = $5, allowed_domains = $6, expires = $7, status = $8,
	account_id = $9, procedure = $10, created_by = $11, updated_at = $12, updated_by = $13, emails = $14,
	profiles = $15, version = version + 1`

// registrationArgs are the values of registrationSet, in order.
func registrationArgs(r *storage.Registration) []any {
	return []any{r.HMACKey, r.Description, r.AllowedDomains, nullTime(r.Expires), r.Status,
		r.AccountID, r.Procedure, r.CreatedBy, r.UpdatedAt, r.UpdatedBy, r.Emails, r.Profiles}
}

// CreateRegistration implements storage.Registrations.
func (s *Store) CreateRegistration(ctx context.Context, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return fmt.Errorf("postgres: registration key id %q is not 1 to 64 characters of [A-Za-z0-9_-]", r.KeyID)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO registrations (namespace, key_id, created_at, hmac_key, description,
		allowed_domains, expires, status, account_id, procedure, created_by, updated_at, updated_by, emails, profiles, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1)`,
		append([]any{s.ns, r.KeyID, r.CreatedAt}, registrationArgs(r)...)...)
	if err != nil {
		return fail(ctx, "create registration", err)
	}
	r.Version = 1
	return nil
}

// GetRegistration implements storage.Registrations.
func (s *Store) GetRegistration(ctx context.Context, keyID string) (*storage.Registration, error) {
	if !storage.ValidKeyID(keyID) {
		return nil, notFound("registration", keyID)
	}
	return getRow(ctx, s, "registration", keyID, scanRegistration, `SELECT `+registrationColumns+` FROM registrations
		WHERE namespace = $1 AND key_id = $2`, s.ns, keyID)
}

var registrationSwap = swapSQL(`UPDATE registrations SET `+registrationSet+`
	WHERE namespace = $1 AND key_id = $2 AND version = $3`, "registrations", "key_id")

// UpdateRegistration implements storage.Registrations.
func (s *Store) UpdateRegistration(ctx context.Context, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return notFound("registration", r.KeyID)
	}
	return s.updateRow(ctx, "registration", r.KeyID, &r.Version, registrationSwap, registrationArgs(r)...)
}

// DeleteRegistration implements storage.Registrations.
func (s *Store) DeleteRegistration(ctx context.Context, keyID string) error {
	if !storage.ValidKeyID(keyID) {
		return notFound("registration", keyID)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, "DELETE FROM registrations WHERE namespace = $1 AND key_id = $2", s.ns, keyID)
	if err != nil {
		return fail(ctx, "delete registration", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("registration", keyID)
	}
	return nil
}

// ListRegistrations implements storage.Registrations. Its cursor is the
// last key id returned.
func (s *Store) ListRegistrations(ctx context.Context, cursor string, limit int) ([]*storage.Registration, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("postgres: ListRegistrations limit %d is not positive", limit)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT `+registrationColumns+` FROM registrations
		WHERE namespace = $1 AND key_id > $2 ORDER BY key_id LIMIT $3`, s.ns, cursor, limit+1)
	regs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*storage.Registration, error) { return scanRegistration(row) })
	if err != nil {
		return nil, "", fail(ctx, "list registrations", err)
	}
	var next string
	if len(regs) > limit {
		regs = regs[:limit]
		next = regs[limit-1].KeyID
	}
	return regs, next, nil
}

// registrationBind swaps the registration, bound to the new account, only
// when no account holds it yet (registrationSwap's $1 to $15), and inserts
// the account (accountInsert's values at $16 on) only FROM the row the
// swap updated. A taken key thumbprint aborts the swap with it.
var registrationBind = swapSQL(`UPDATE registrations SET `+registrationSet+`
	WHERE namespace = $1 AND key_id = $2 AND version = $3 AND account_id = ''`, "registrations", "key_id",
	`created AS (
	INSERT INTO accounts (namespace, `+accountColumns+`)
	SELECT $1, $16, $17, $18, $19, $20, $21, $22, 1 FROM swapped
)`)

// BindAccount implements storage.Registrations in one statement.
func (s *Store) BindAccount(ctx context.Context, a *storage.Account, r *storage.Registration) error {
	if !storage.ValidKeyID(r.KeyID) {
		return notFound("registration", r.KeyID)
	}
	acct, reg := *a, *r
	acct.RegistrationID, reg.AccountID = r.KeyID, a.ID
	args := append([]any{s.ns, reg.KeyID, reg.Version}, registrationArgs(&reg)...)
	args = append(args, accountArgs(&acct)...)

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var swapped, exists bool
	if err := s.pool.QueryRow(ctx, registrationBind, args...).Scan(&swapped, &exists); err != nil {
		return fail(ctx, "bind account", err)
	}
	if !swapped && exists {
		return fmt.Errorf("postgres: registration %q changed since it was read or is bound: %w", r.KeyID, storage.ErrConflict)
	}
	if err := swapResult("registration", r.KeyID, swapped, exists); err != nil {
		return err
	}
	a.RegistrationID, a.Version = r.KeyID, 1
	r.AccountID = a.ID
	r.Version++
	return nil
}
