package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

const accountColumns = `id, key_thumbprint, key_jwk, contact, status, created_at, registration_id, version`

func scanAccount(row pgx.Row) (*storage.Account, error) {
	var a storage.Account
	if err := row.Scan(&a.ID, &a.KeyThumbprint, &a.KeyJWK, &a.Contact, &a.Status, &a.CreatedAt, &a.RegistrationID, &a.Version); err != nil {
		return nil, err
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return &a, nil
}

// accountInsert takes accountArgs from $2 on.
const accountInsert = `INSERT INTO accounts (namespace, ` + accountColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)`

// accountArgs are a's columns in the order of accountColumns but version.
func accountArgs(a *storage.Account) []any {
	return []any{a.ID, a.KeyThumbprint, a.KeyJWK, a.Contact, a.Status, a.CreatedAt, a.RegistrationID}
}

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a *storage.Account) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, accountInsert, append([]any{s.ns}, accountArgs(a)...)...); err != nil {
		return fail(ctx, "create account", err)
	}
	a.Version = 1
	return nil
}

// GetAccount implements storage.Accounts.
func (s *Store) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	if a, ok := s.cached.Get(id); ok {
		return a, nil
	}
	return s.RefreshAccount(ctx, id)
}

// RefreshAccount reads the account id from the database, whatever memory
// holds, and keeps what it read: the gateway calls it when a signature does
// not verify with the key held, which another instance may have rolled over
// a moment ago. It forgets nothing else, so requests with bad signatures
// cannot empty the memory for others.
func (s *Store) RefreshAccount(ctx context.Context, id string) (*storage.Account, error) {
	return s.cached.Load(id, func() (*storage.Account, error) { return s.getAccount(ctx, "id", id) })
}

// AccountByThumbprint implements storage.Accounts.
func (s *Store) AccountByThumbprint(ctx context.Context, thumbprint string) (*storage.Account, error) {
	return s.getAccount(ctx, "key_thumbprint", thumbprint)
}

func (s *Store) getAccount(ctx context.Context, column, key string) (*storage.Account, error) {
	return getRow(ctx, s, "account", key, scanAccount,
		`SELECT `+accountColumns+` FROM accounts WHERE namespace = $1 AND `+column+` = $2`, s.ns, key)
}

var accountSwap = swapSQL(`UPDATE accounts
	SET key_thumbprint = $4, key_jwk = $5, contact = $6, status = $7, registration_id = $8, version = version + 1
	WHERE namespace = $1 AND id = $2 AND version = $3`, "accounts", "id")

// UpdateAccount implements storage.Accounts. A key rollover to a
// thumbprint another account holds violates the unique index: ErrConflict.
func (s *Store) UpdateAccount(ctx context.Context, a *storage.Account) error {
	// Forgotten at once here; other instances hear of it (accountwatch.go).
	defer s.cached.Invalidate(a.ID)
	return s.updateRow(ctx, "account", a.ID, &a.Version, accountSwap,
		a.KeyThumbprint, a.KeyJWK, a.Contact, a.Status, a.RegistrationID)
}
