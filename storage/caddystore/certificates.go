package caddystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/internal/listing"
)

// StoreCertificate implements storage.Certificates. It holds the order's lock
// and then the serial's, and writes the certificate before the order: the
// order is the commit point, so a crash in between leaves at worst a
// certificate that no order names, and its serial is never issued again.
func (s *Store) StoreCertificate(ctx context.Context, c *storage.Certificate, o *storage.Order) error {
	if !safe(c.Serial) {
		return unsafeName("certificate serial", c.Serial)
	}
	if !safe(o.ID) {
		return fmt.Errorf("caddystore: order %q: %w", o.ID, storage.ErrNotFound)
	}
	orderKey, certKey := s.orderKey(o.ID), s.certKey(c.Serial)
	return s.locked(ctx, orderKey, func() error {
		if _, err := current(ctx, s, orders, o); err != nil {
			return err
		}
		return s.locked(ctx, certKey, func() error {
			switch _, err := s.GetCertificate(ctx, c.Serial); {
			case err == nil:
				return fmt.Errorf("caddystore: certificate %q: %w", c.Serial, storage.ErrConflict)
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
			cert, order := *c, *o
			cert.Version, order.Version = 1, o.Version+1
			if err := s.putString(ctx, s.certificateIndex()+"/"+listing.Key(c.IssuedAt, c.Serial), c.Serial); err != nil {
				return err
			}
			if err := s.put(ctx, certKey, &cert); err != nil {
				return err
			}
			if err := s.put(ctx, orderKey, &order); err != nil {
				// Best effort: a certificate left behind is unreferenced.
				_ = s.storage.Delete(context.WithoutCancel(ctx), certKey)
				return err
			}
			c.Version, o.Version = cert.Version, order.Version
			return nil
		})
	})
}

// GetCertificate implements storage.Certificates.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	return getRecord(ctx, s, certificates, serial)
}

// UpdateCertificate implements storage.Certificates.
func (s *Store) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	return updateRecord(ctx, s, certificates, c, nil)
}
