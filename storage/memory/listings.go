package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// ListAccounts implements storage.Listings. It walks accounts in creation
// order from the cursor until a page is full: O(n) for a rare filter.
func (s *Store) ListAccounts(_ context.Context, f storage.AccountFilter, cursor string, limit int) ([]*storage.Account, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListAccounts limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids, next := walk(s.accountList, cursor, limit, func(id string) bool { return accountMatches(s.accounts[id], f) })
	accts := make([]*storage.Account, len(ids))
	for i, id := range ids {
		accts[i] = copyAccount(s.accounts[id])
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
	serials, next := walk(s.certList, cursor, limit, func(serial string) bool { return certificateMatches(s.certs[serial], f) })
	certs := make([]*storage.Certificate, len(serials))
	for i, serial := range serials {
		certs[i] = copyCertificate(s.certs[serial])
	}
	return certs, next, nil
}

func certificateMatches(c *storage.Certificate, f storage.CertificateFilter) bool {
	return (f.AccountID == "" || c.AccountID == f.AccountID) &&
		(f.Name == "" || slices.Contains(c.Names, f.Name)) &&
		(f.Serial == "" || c.Serial == f.Serial) &&
		(f.Status == "" || c.Status == f.Status)
}

// walk returns the ids of up to limit entries of list after cursor that
// match, and the next cursor: the key of the last one returned when a later
// entry matches too, else "".
func walk(list []listEntry, cursor string, limit int, match func(id string) bool) (ids []string, next string) {
	i := sort.Search(len(list), func(i int) bool { return list[i].key > cursor })
	for ; i < len(list); i++ {
		if !match(list[i].id) {
			continue
		}
		if len(ids) == limit {
			return ids, next
		}
		ids, next = append(ids, list[i].id), list[i].key
	}
	return ids, ""
}

type auditRecord struct {
	key   string
	entry *storage.AuditEntry
}

// AppendAudit implements storage.Audit.
func (s *Store) AppendAudit(_ context.Context, e *storage.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auditIDs[e.ID] {
		return fmt.Errorf("memory: audit entry %q: %w", e.ID, storage.ErrConflict)
	}
	s.auditIDs[e.ID] = true
	rec := auditRecord{listKey(e.Time, e.ID), copyAudit(e)}
	if n := len(s.audit); n == 0 || s.audit[n-1].key < rec.key {
		s.audit = append(s.audit, rec)
	} else {
		i := sort.Search(n, func(i int) bool { return s.audit[i].key > rec.key })
		s.audit = slices.Insert(s.audit, i, rec)
	}
	return nil
}

// ListAudit implements storage.Audit.
func (s *Store) ListAudit(_ context.Context, cursor string, limit int) ([]*storage.AuditEntry, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("memory: ListAudit limit %d is not positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.audit), func(i int) bool { return s.audit[i].key > cursor })
	page := s.audit[i:min(i+limit, len(s.audit))]
	entries := make([]*storage.AuditEntry, len(page))
	for j, r := range page {
		entries[j] = copyAudit(r.entry)
	}
	var next string
	if i+len(page) < len(s.audit) {
		next = page[len(page)-1].key
	}
	return entries, next, nil
}

func copyAudit(e *storage.AuditEntry) *storage.AuditEntry {
	c := *e
	c.Detail = slices.Clone(e.Detail)
	return &c
}
