package memory

import (
	"context"
	"fmt"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// StoreCertificate implements storage.Certificates.
func (s *Store) StoreCertificate(_ context.Context, c *storage.Certificate, o *storage.Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.orders[o.ID]
	if !ok {
		return notFound("order", o.ID)
	}
	if old.Version != o.Version {
		return conflict("order", o.ID, old.Version, o.Version)
	}
	if _, ok := s.certs[c.Serial]; ok {
		return fmt.Errorf("memory: certificate %q: %w", c.Serial, storage.ErrConflict)
	}
	c.Version = 1
	s.certs[c.Serial] = copyCertificate(c)
	s.certList = insertEntry(s.certList, listEntry{listing.Key(c.IssuedAt, c.Serial), c.Serial}, listEntry.sortKey)
	o.Version++
	s.orders[o.ID] = copyOrder(o)
	return nil
}

// GetCertificate implements storage.Certificates.
func (s *Store) GetCertificate(_ context.Context, serial string) (*storage.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.certs[serial]
	if !ok {
		return nil, notFound("certificate", serial)
	}
	return copyCertificate(c), nil
}

// UpdateCertificate implements storage.Certificates.
func (s *Store) UpdateCertificate(_ context.Context, c *storage.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.certs[c.Serial]
	if !ok {
		return notFound("certificate", c.Serial)
	}
	if old.Version != c.Version {
		return conflict("certificate", c.Serial, old.Version, c.Version)
	}
	c.Version++
	s.certs[c.Serial] = copyCertificate(c)
	return nil
}
