package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// StoreCertificate implements storage.Certificates: the certificate and the
// swap of its order are one transaction.
func (s *Store) StoreCertificate(ctx context.Context, c *storage.Certificate, o *storage.Order) error {
	order := *o
	order.Version++
	orderValue, err := orders.encode(o.ID, &order)
	if err != nil {
		return err
	}
	err = createRecord(ctx, s, certificates, c.Serial, c, func(tx *bolt.Tx, rec *storage.Certificate, seq []byte) error {
		old, orderSeq, err := orders.swap(tx, o.ID, o.Version, orderValue, true)
		if err != nil {
			return err
		}
		if err := indexOrder(tx, old, &order, orderSeq); err != nil {
			return err
		}
		if err := put(appending(tx.Bucket(certificateChains)), seq, rec.ChainPEM, "certificate chain"); err != nil {
			return err
		}
		return put(appending(tx.Bucket(certificateList)), certificateListKey(rec), seq, "certificate")
	})
	if err != nil {
		return err
	}
	o.Version = order.Version
	return nil
}

// certificateListKey is c's entry in the index of issuance order.
func certificateListKey(c *storage.Certificate) []byte {
	return append(timeKey(nil, c.IssuedAt), c.Serial...)
}

// chain returns a copy of the chain of the certificate at seq.
func chain(tx *bolt.Tx, seq []byte) []byte {
	return bytes.Clone(tx.Bucket(certificateChains).Get(seq))
}

// GetCertificate implements storage.Certificates.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	var c *storage.Certificate
	err := s.read(ctx, func(tx *bolt.Tx) error {
		rec, seq, err := certificates.get(tx, serial)
		if err != nil {
			return err
		}
		rec.ChainPEM = chain(tx, seq)
		c = rec
		return nil
	})
	return c, err
}

// UpdateCertificate implements storage.Certificates. It rewrites the chain
// only when it changed, which it does not when a certificate is revoked.
func (s *Store) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	return updateRecord(ctx, s, certificates, c.Serial, c, func(tx *bolt.Tx, old, rec *storage.Certificate, seq []byte) error {
		if chains := tx.Bucket(certificateChains); !bytes.Equal(chains.Get(seq), rec.ChainPEM) {
			if err := put(chains, seq, rec.ChainPEM, "certificate chain"); err != nil {
				return err
			}
		}
		if old.IssuedAt.Equal(rec.IssuedAt) {
			return nil
		}
		list := tx.Bucket(certificateList)
		if err := list.Delete(certificateListKey(old)); err != nil {
			return fmt.Errorf("boltstore: certificate %q: %w", c.Serial, err)
		}
		return put(list, certificateListKey(rec), seq, "certificate")
	})
}
