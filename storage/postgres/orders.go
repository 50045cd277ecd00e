package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

const orderColumns = `id, account_id, status, identifiers, authz_ids, not_before, not_after, expires,
	created_at, updated_at, certificate_serial, issuer_ref, csr, error, profile, replaces, version`

func scanOrder(row pgx.Row) (*storage.Order, error) {
	var (
		o                   storage.Order
		notBefore, notAfter pgtype.Timestamptz
	)
	err := row.Scan(&o.ID, &o.AccountID, &o.Status, &o.Identifiers, &o.AuthzIDs, &notBefore, &notAfter, &o.Expires,
		&o.CreatedAt, &o.UpdatedAt, &o.CertificateSerial, &o.IssuerRef, &o.CSR, &o.Error, &o.Profile, &o.Replaces, &o.Version)
	if err != nil {
		return nil, err
	}
	o.NotBefore, o.NotAfter = fromNull(notBefore), fromNull(notAfter)
	o.Expires, o.CreatedAt, o.UpdatedAt = o.Expires.UTC(), o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return &o, nil
}

// orderSet writes what may change of an order, from orderArgs at $4 on.
const orderSet = `status = $4, identifiers = $5, authz_ids = $6, not_before = $7, not_after = $8, expires = $9,
	updated_at = $10, certificate_serial = $11, issuer_ref = $12, csr = $13, error = $14, version = version + 1`

// orderArgs are the values of orderSet, in order.
func orderArgs(o *storage.Order) []any {
	return []any{o.Status, o.Identifiers, o.AuthzIDs, nullTime(o.NotBefore), nullTime(o.NotAfter), o.Expires,
		o.UpdatedAt, o.CertificateSerial, o.IssuerRef, o.CSR, o.Error}
}

// orderCreate inserts the new authorizations, given as arrays at $2 to $9,
// and the order, from $10 on, in one statement: both or neither.
const orderCreate = `WITH new_authzs AS (
	INSERT INTO authzs (namespace, id, account_id, ident_type, ident_value, wildcard, status, expires, challenges, version)
	SELECT $1, id, account_id, ident_type, ident_value, wildcard, status, expires, challenges::jsonb, 1
	FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::timestamptz[], $9::text[])
		AS a (id, account_id, ident_type, ident_value, wildcard, status, expires, challenges)
)
INSERT INTO orders (namespace, id, account_id, created_at, status, identifiers, authz_ids, not_before, not_after,
	expires, updated_at, certificate_serial, issuer_ref, csr, error, profile, replaces, version)
VALUES ($1, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, 1)`

// CreateOrder implements storage.Orders in one statement.
func (s *Store) CreateOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	var (
		ids, accounts, types, values, statuses, challenges []string
		wildcards                                          []bool
		expires                                            []time.Time
		created                                            []*storage.Authorization
	)
	for _, a := range authzs {
		if a.Version != 0 {
			continue // reused
		}
		ch, err := json.Marshal(a.Challenges)
		if err != nil {
			return fmt.Errorf("postgres: authz %q: %w", a.ID, err)
		}
		ids, accounts, types, values = append(ids, a.ID), append(accounts, a.AccountID), append(types, a.Identifier.Type), append(values, a.Identifier.Value)
		wildcards, statuses, expires = append(wildcards, a.Wildcard), append(statuses, a.Status), append(expires, a.Expires)
		challenges = append(challenges, string(ch))
		created = append(created, a)
	}
	args := []any{s.ns, ids, accounts, types, values, wildcards, statuses, expires, challenges, o.ID, o.AccountID, o.CreatedAt}
	args = append(args, orderArgs(o)...)
	args = append(args, o.Profile, o.Replaces)

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, orderCreate, args...); err != nil {
		return fail(ctx, "create order", err)
	}
	for _, a := range created {
		a.Version = 1
	}
	o.Version = 1
	return nil
}

// GetOrder implements storage.Orders.
func (s *Store) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	return getRow(ctx, s, "order", id, scanOrder,
		`SELECT `+orderColumns+` FROM orders WHERE namespace = $1 AND id = $2`, s.ns, id)
}

var orderSwap = swapSQL(`UPDATE orders SET `+orderSet+`
	WHERE namespace = $1 AND id = $2 AND version = $3`, "orders", "id")

// UpdateOrder implements storage.Orders.
func (s *Store) UpdateOrder(ctx context.Context, o *storage.Order) error {
	return s.updateRow(ctx, "order", o.ID, &o.Version, orderSwap, orderArgs(o)...)
}

// ListOrders implements storage.Orders. Its cursor is that of listAfter.
func (s *Store) ListOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	after, err := parseCursor(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT id, created_at FROM orders
		WHERE namespace = $1 AND account_id = $2 AND (created_at, id) > ($3, $4)
		ORDER BY created_at, id LIMIT $5`, s.ns, accountID, after.time, after.id, limit+1)
	var ids []string
	next, err := page(rows, limit, func(row pgx.Rows) (cursorKey, error) {
		var k cursorKey
		if err := row.Scan(&k.id, &k.time); err != nil {
			return k, err
		}
		ids = append(ids, k.id)
		return k, nil
	})
	if err != nil {
		return nil, "", fail(ctx, "list orders", err)
	}
	return ids, next, nil
}

const authzColumns = `id, account_id, ident_type, ident_value, wildcard, status, expires, challenges, version`

func scanAuthz(row pgx.Row) (*storage.Authorization, error) {
	var a storage.Authorization
	err := row.Scan(&a.ID, &a.AccountID, &a.Identifier.Type, &a.Identifier.Value, &a.Wildcard, &a.Status, &a.Expires, &a.Challenges, &a.Version)
	if err != nil {
		return nil, err
	}
	a.Expires = a.Expires.UTC()
	return &a, nil
}

// GetAuthz implements storage.Authorizations.
func (s *Store) GetAuthz(ctx context.Context, id string) (*storage.Authorization, error) {
	return getRow(ctx, s, "authz", id, scanAuthz,
		`SELECT `+authzColumns+` FROM authzs WHERE namespace = $1 AND id = $2`, s.ns, id)
}

// authzSwap never changes the account: AccountID is fixed at creation.
var authzSwap = swapSQL(`UPDATE authzs
	SET ident_type = $4, ident_value = $5, wildcard = $6, status = $7, expires = $8, challenges = $9, version = version + 1
	WHERE namespace = $1 AND id = $2 AND version = $3`, "authzs", "id")

// UpdateAuthz implements storage.Authorizations.
func (s *Store) UpdateAuthz(ctx context.Context, a *storage.Authorization) error {
	return s.updateRow(ctx, "authz", a.ID, &a.Version, authzSwap,
		a.Identifier.Type, a.Identifier.Value, a.Wildcard, a.Status, a.Expires, a.Challenges)
}

// ValidAuthz implements storage.Authorizations from the partial index
// authzs_valid, preferring the authorization that expires last.
func (s *Store) ValidAuthz(ctx context.Context, accountID string, ident storage.Identifier, wildcard bool, now time.Time) (*storage.Authorization, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	a, err := scanAuthz(s.pool.QueryRow(ctx, `SELECT `+authzColumns+` FROM authzs
		WHERE namespace = $1 AND account_id = $2 AND ident_type = $3 AND ident_value = $4 AND wildcard = $5
			AND status = 'valid' AND expires > $6
		ORDER BY expires DESC LIMIT 1`, s.ns, accountID, ident.Type, ident.Value, wildcard, now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("postgres: valid authz: %w", storage.ErrNotFound)
	case err != nil:
		return nil, fail(ctx, "valid authz", err)
	}
	return a, nil
}
