package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// ListAccounts implements storage.Listings. It walks accounts in creation
// order from the cursor until a page is full: O(n) for a rare filter.
func (s *Store) ListAccounts(_ context.Context, f storage.AccountFilter, cursor string, limit int) ([]*storage.Account, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListAccounts limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	accts, next := walk(s.accountList, cursor, limit, s.accounts.records, func(a *storage.Account) bool { return accountMatches(a, f) })
	for i, a := range accts {
		accts[i] = copyAccount(a)
	}
	return accts, next, nil
}

func accountMatches(a *storage.Account, f storage.AccountFilter) bool {
	return (f.RegistrationID == "" || a.RegistrationID == f.RegistrationID) &&
		(f.Contact == "" || slices.Contains(a.Contact, f.Contact)) &&
		(f.Status == "" || a.Status == f.Status)
}

// ListCertificates implements storage.Listings, like ListAccounts.
func (s *Store) ListCertificates(_ context.Context, f storage.CertificateFilter, cursor string, limit int) ([]*storage.Certificate, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListCertificates limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	certs, next := walk(s.certList, cursor, limit, s.certs.records, func(c *storage.Certificate) bool { return certificateMatches(c, f) })
	for i, c := range certs {
		certs[i] = copyCertificate(c)
	}
	return certs, next, nil
}

func certificateMatches(c *storage.Certificate, f storage.CertificateFilter) bool {
	return (f.AccountID == "" || c.AccountID == f.AccountID) &&
		(f.Name == "" || slices.Contains(c.Names, f.Name)) &&
		(f.Serial == "" || c.Serial == f.Serial) &&
		(f.Status == "" || c.Status == f.Status)
}

// walk returns up to limit of the stored records in list after cursor that
// match, and the next cursor (see listing.Filter). The caller copies them.
func walk[T any](list []listEntry, cursor string, limit int, records map[string]*T, match func(*T) bool) ([]*T, string) {
	out, next, _ := listing.Filter(list, listEntry.sortKey, cursor, limit, func(e listEntry) (*T, bool, error) {
		rec := records[e.id]
		return rec, match(rec), nil
	})
	return out, next
}

type auditRecord struct {
	key   string
	entry *storage.AuditEntry
}

func (r auditRecord) sortKey() string { return r.key }

// AppendAudit implements storage.Audit.
func (s *Store) AppendAudit(_ context.Context, e *storage.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auditIDs[e.ID] {
		return fmt.Errorf("memory: audit entry %q: %w", e.ID, storage.ErrConflict)
	}
	s.auditIDs[e.ID] = true
	rec := auditRecord{listing.Key(e.Time, e.ID), copyAudit(e)}
	s.audit = insertEntry(s.audit, rec, auditRecord.sortKey)
	return nil
}

// ListAudit implements storage.Audit.
func (s *Store) ListAudit(_ context.Context, cursor string, limit int) ([]*storage.AuditEntry, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListAudit limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := listing.Page(s.audit, auditRecord.sortKey, cursor, limit)
	entries := make([]*storage.AuditEntry, len(page))
	for j, r := range page {
		entries[j] = copyAudit(r.entry)
	}
	return entries, next, nil
}

func copyAudit(e *storage.AuditEntry) *storage.AuditEntry {
	c := *e
	c.Detail = slices.Clone(e.Detail)
	return &c
}
