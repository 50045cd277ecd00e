package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// cursorKey is a position in a listing ordered by a time, ties by id. Its
// cursor is "<Unix microseconds>.<id>": ids have no dots.
type cursorKey struct {
	time pgtype.Timestamptz
	id   string
}

func keyOf(t time.Time, id string) cursorKey {
	return cursorKey{pgtype.Timestamptz{Time: t, Valid: true}, id}
}

func (k cursorKey) String() string {
	return strconv.FormatInt(k.time.Time.UnixMicro(), 10) + "." + k.id
}

// parseCursor returns the position a cursor names; "" is before every
// record.
func parseCursor(cursor string, limit int) (cursorKey, error) {
	if limit <= 0 {
		return cursorKey{}, fmt.Errorf("postgres: listing limit %d is not positive", limit)
	}
	if cursor == "" {
		return cursorKey{time: pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}}, nil
	}
	us, id, ok := strings.Cut(cursor, ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil {
		return cursorKey{}, fmt.Errorf("postgres: malformed listing cursor %q", cursor)
	}
	return keyOf(time.UnixMicro(n), id), nil
}

// page reads a listing's rows, fetched with LIMIT limit+1: scan reads each
// of the first limit rows and returns its position. The cursor returned is
// that of the limit-th row when another row follows, else "".
func page(rows pgx.Rows, limit int, scan func(pgx.Rows) (cursorKey, error)) (next string, err error) {
	defer rows.Close()
	var last cursorKey
	for n := 0; rows.Next(); n++ {
		if n == limit {
			next = last.String()
			break
		}
		if last, err = scan(rows); err != nil {
			return "", err
		}
	}
	rows.Close()
	return next, rows.Err()
}

// ListAccounts implements storage.Listings.
func (s *Store) ListAccounts(ctx context.Context, f storage.AccountFilter, cursor string, limit int) ([]*storage.Account, string, error) {
	after, err := parseCursor(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE namespace = $1 AND (created_at, id) > ($2, $3)
			AND ($4::text = '' OR registration_id = $4) AND ($5::text = '' OR $5 = ANY (contact)) AND ($6::text = '' OR status = $6)
		ORDER BY created_at, id LIMIT $7`,
		s.ns, after.time, after.id, f.RegistrationID, f.Contact, f.Status, limit+1)
	var accts []*storage.Account
	next, err := page(rows, limit, func(row pgx.Rows) (cursorKey, error) {
		a, err := scanAccount(row)
		if err != nil {
			return cursorKey{}, err
		}
		accts = append(accts, a)
		return keyOf(a.CreatedAt, a.ID), nil
	})
	if err != nil {
		return nil, "", fail(ctx, "list accounts", err)
	}
	return accts, next, nil
}

// ListCertificates implements storage.Listings.
func (s *Store) ListCertificates(ctx context.Context, f storage.CertificateFilter, cursor string, limit int) ([]*storage.Certificate, string, error) {
	after, err := parseCursor(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT `+certificateColumns+` FROM certificates
		WHERE namespace = $1 AND (issued_at, serial) > ($2, $3)
			AND ($4::text = '' OR account_id = $4) AND ($5::text = '' OR $5 = ANY (names))
			AND ($6::text = '' OR serial = $6) AND ($7::text = '' OR status = $7)
		ORDER BY issued_at, serial LIMIT $8`,
		s.ns, after.time, after.id, f.AccountID, f.Name, f.Serial, f.Status, limit+1)
	var certs []*storage.Certificate
	next, err := page(rows, limit, func(row pgx.Rows) (cursorKey, error) {
		c, err := scanCertificate(row)
		if err != nil {
			return cursorKey{}, err
		}
		certs = append(certs, c)
		return keyOf(c.IssuedAt, c.Serial), nil
	})
	if err != nil {
		return nil, "", fail(ctx, "list certificates", err)
	}
	return certs, next, nil
}

// AppendAudit implements storage.Audit.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEntry) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO audit (namespace, id, time, actor, action, target, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.ns, e.ID, e.Time, e.Actor, e.Action, e.Target, e.Detail)
	if err != nil {
		return fail(ctx, "append audit", err)
	}
	return nil
}

// ListAudit implements storage.Audit.
func (s *Store) ListAudit(ctx context.Context, cursor string, limit int) ([]*storage.AuditEntry, string, error) {
	after, err := parseCursor(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT id, time, actor, action, target, detail FROM audit
		WHERE namespace = $1 AND (time, id) > ($2, $3)
		ORDER BY time, id LIMIT $4`, s.ns, after.time, after.id, limit+1)
	var entries []*storage.AuditEntry
	next, err := page(rows, limit, func(row pgx.Rows) (cursorKey, error) {
		var e storage.AuditEntry
		if err := row.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return cursorKey{}, err
		}
		e.Time = e.Time.UTC()
		entries = append(entries, &e)
		return keyOf(e.Time, e.ID), nil
	})
	if err != nil {
		return nil, "", fail(ctx, "list audit", err)
	}
	return entries, next, nil
}
