package caddystore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// ListAccounts implements storage.Listings (O(n): see the package doc).
func (s *Store) ListAccounts(ctx context.Context, f storage.AccountFilter, cursor string, limit int) ([]*storage.Account, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("caddystore: ListAccounts limit %d is not positive", limit)
	}
	return scan(ctx, s, s.accountIndex(), cursor, limit, func(id string) (*storage.Account, string, error) {
		a, err := s.GetAccount(ctx, id)
		if err != nil {
			return nil, "", err
		}
		match := (f.RegistrationID == "" || a.RegistrationID == f.RegistrationID) &&
			(f.Contact == "" || slices.Contains(a.Contact, f.Contact)) &&
			(f.Status == "" || a.Status == f.Status)
		if !match {
			return nil, listing.Key(a.CreatedAt, a.ID), nil
		}
		return a, listing.Key(a.CreatedAt, a.ID), nil
	})
}

// ListCertificates implements storage.Listings (O(n): see the package doc).
func (s *Store) ListCertificates(ctx context.Context, f storage.CertificateFilter, cursor string, limit int) ([]*storage.Certificate, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("caddystore: ListCertificates limit %d is not positive", limit)
	}
	return scan(ctx, s, s.certificateIndex(), cursor, limit, func(serial string) (*storage.Certificate, string, error) {
		c, err := s.GetCertificate(ctx, serial)
		if err != nil {
			return nil, "", err
		}
		match := (f.AccountID == "" || c.AccountID == f.AccountID) &&
			(f.Name == "" || slices.Contains(c.Names, f.Name)) &&
			(f.Serial == "" || c.Serial == f.Serial) &&
			(f.Status == "" || c.Status == f.Status)
		if !match {
			return nil, listing.Key(c.IssuedAt, c.Serial), nil
		}
		return c, listing.Key(c.IssuedAt, c.Serial), nil
	})
}

// scan pages through the creation-ordered index in dir: it loads the
// record of each entry after cursor with load, which returns the record
// (nil when it does not match the filter) and the record's own index key,
// and stops once a page is full and one more record matches. An entry
// whose record is missing or has another index key is stale and skipped.
func scan[T any](ctx context.Context, s *Store, dir, cursor string, limit int, load func(id string) (*T, string, error)) ([]*T, string, error) {
	keys, err := s.indexKeys(ctx, dir)
	if err != nil {
		return nil, "", err
	}
	return listing.Filter(keys, self, cursor, limit, func(k string) (*T, bool, error) {
		id, _ := listing.ID(k)
		rec, own, err := load(id)
		if errors.Is(err, storage.ErrNotFound) || err == nil && own != k {
			return nil, false, nil
		}
		return rec, err == nil && rec != nil, err
	})
}

// indexKeys returns the sorted entries of a creation-ordered index,
// skipping what is not an entry, such as an editor's backup file.
func (s *Store) indexKeys(ctx context.Context, dir string) ([]string, error) {
	keys, err := s.list(ctx, dir)
	if err != nil {
		return nil, err
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return !isEntry(k) })
	slices.Sort(keys)
	return keys, nil
}

// isEntry reports whether k is an entry of a creation-ordered index: a
// listing.Key with an id.
func isEntry(k string) bool {
	id, ok := listing.ID(k)
	return ok && id != ""
}

// self is the sort key of a key in a sorted list of keys.
func self(k string) string { return k }

// AppendAudit implements storage.Audit (see claimID).
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEntry) error {
	k := listing.Key(e.Time, e.ID)
	return s.claimID(ctx, "audit entry", e.ID, s.auditIDKey(e.ID), k, func() error {
		return s.put(ctx, s.auditDir()+"/"+k+".json", e)
	})
}

// ListAudit implements storage.Audit. Its cursor is the last entry's key
// without ".json".
func (s *Store) ListAudit(ctx context.Context, cursor string, limit int) ([]*storage.AuditEntry, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("caddystore: ListAudit limit %d is not positive", limit)
	}
	keys, err := s.recordNames(ctx, s.auditDir(), isEntry)
	if err != nil {
		return nil, "", err
	}
	page, next := listing.Page(keys, self, cursor, limit)
	entries := make([]*storage.AuditEntry, 0, len(page))
	for _, k := range page {
		var e storage.AuditEntry
		if err := s.load(ctx, s.auditDir()+"/"+k+".json", &e); err != nil {
			return nil, "", err
		}
		entries = append(entries, &e)
	}
	return entries, next, nil
}
