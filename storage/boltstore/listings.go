package boltstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// list pages through the entries of bucket whose keys start with prefix,
// in key order, from the first one after cursor. Each entry goes through
// take, which returns what to list and whether to list it, until limit are
// listed; next is then the cursor of the last one listed if take lists one
// more, else "". A cursor is the base64url of a key without prefix, so an
// empty one is before every key.
func list[T any](ctx context.Context, s *Store, bucket, prefix []byte, cursor string, limit int,
	take func(tx *bolt.Tx, k, v []byte) (T, bool, error)) (out []T, next string, err error) {
	after, err := listingStart(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	start := append(slices.Clip(prefix), after...)
	err = s.read(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		k, v := c.Seek(start)
		if len(after) > 0 && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rec, ok, err := take(tx, k, v)
			switch {
			case err != nil:
				return err
			case !ok:
				continue
			case len(out) == limit:
				next = base64.RawURLEncoding.EncodeToString(last[len(prefix):])
				return nil
			}
			out, last = append(out, rec), k
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// listingStart checks a listing's limit and decodes its cursor.
func listingStart(cursor string, limit int) ([]byte, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("boltstore: listing limit %d is not positive", limit)
	}
	after, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, fmt.Errorf("boltstore: malformed listing cursor %q", cursor)
	}
	return after, nil
}

// matching returns a take for list over an index whose values are sequences
// of t's records: it lists the records that keep accepts.
func (t table[T]) matching(keep func(*T) bool) func(tx *bolt.Tx, k, seq []byte) (*T, bool, error) {
	return func(tx *bolt.Tx, _, seq []byte) (*T, bool, error) {
		rec, err := t.load(tx, seq)
		if err != nil || !keep(rec) {
			return nil, false, err
		}
		return rec, true, nil
	}
}

// ListAccounts implements storage.Listings by reading every account after
// the cursor until a page is full.
func (s *Store) ListAccounts(ctx context.Context, f storage.AccountFilter, cursor string, limit int) ([]*storage.Account, string, error) {
	return list(ctx, s, accountList, nil, cursor, limit, accounts.matching(func(a *storage.Account) bool {
		return (f.RegistrationID == "" || a.RegistrationID == f.RegistrationID) &&
			(f.Contact == "" || slices.Contains(a.Contact, f.Contact)) &&
			(f.Status == "" || a.Status == f.Status)
	}))
}

// ListCertificates implements storage.Listings by reading every certificate
// after the cursor until a page is full, but not their chains, which are
// read for the page only. A serial filter looks the one certificate up.
func (s *Store) ListCertificates(ctx context.Context, f storage.CertificateFilter, cursor string, limit int) ([]*storage.Certificate, string, error) {
	match := certificates.matching(func(c *storage.Certificate) bool {
		return (f.AccountID == "" || c.AccountID == f.AccountID) &&
			(f.Name == "" || slices.Contains(c.Names, f.Name)) &&
			(f.Serial == "" || c.Serial == f.Serial) &&
			(f.Status == "" || c.Status == f.Status)
	})
	take := func(tx *bolt.Tx, k, seq []byte) (*storage.Certificate, bool, error) {
		c, ok, err := match(tx, k, seq)
		if ok {
			c.ChainPEM = chain(tx, seq)
		}
		return c, ok, err
	}
	if f.Serial == "" {
		return list(ctx, s, certificateList, nil, cursor, limit, take)
	}
	// The one certificate with the serial, if it comes after the cursor.
	after, err := listingStart(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	var out []*storage.Certificate
	err = s.read(ctx, func(tx *bolt.Tx) error {
		seq := tx.Bucket(certificates.keys).Get([]byte(f.Serial))
		if seq == nil {
			return nil
		}
		c, err := certificates.load(tx, seq)
		if err != nil || bytes.Compare(certificateListKey(c), after) <= 0 {
			return err
		}
		if c, ok, err := take(tx, nil, seq); ok {
			out = append(out, c)
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, "", nil
}

// AppendAudit implements storage.Audit.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEntry) error {
	return createRecord(ctx, s, audit, e.ID, e, func(tx *bolt.Tx, rec *storage.AuditEntry, seq []byte) error {
		return put(appending(tx.Bucket(auditList)), append(timeKey(nil, rec.Time), rec.ID...), seq, "audit entry")
	})
}

// ListAudit implements storage.Audit.
func (s *Store) ListAudit(ctx context.Context, cursor string, limit int) ([]*storage.AuditEntry, string, error) {
	all := audit.matching(func(*storage.AuditEntry) bool { return true })
	return list(ctx, s, auditList, nil, cursor, limit, all)
}
