package memory

import (
	"context"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// StoreCertificate implements storage.Certificates.
func (s *Store) StoreCertificate(_ context.Context, c *storage.Certificate, o *storage.Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.orders.current(o); err != nil {
		return err
	}
	if err := s.certs.free(c.Serial); err != nil {
		return err
	}
	s.certs.insert(c)
	s.certList = insertEntry(s.certList, listEntry{listing.Key(c.IssuedAt, c.Serial), c.Serial}, listEntry.sortKey)
	s.orders.replace(o)
	return nil
}

// GetCertificate implements storage.Certificates.
func (s *Store) GetCertificate(_ context.Context, serial string) (*storage.Certificate, error) {
	return getRecord(s, s.certs, serial)
}

// UpdateCertificate implements storage.Certificates.
func (s *Store) UpdateCertificate(_ context.Context, c *storage.Certificate) error {
	return updateRecord(s, s.certs, c, nil)
}
