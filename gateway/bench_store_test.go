package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// countingStore counts the record reads and writes the handler makes, so
// that the benchmarks report them per issuance: on a disk or a database
// each is a round trip, which the in-memory store hides.
type countingStore struct {
	storage.Store
	reads, writes atomic.Int64
}

func (s *countingStore) read()  { s.reads.Add(1) }
func (s *countingStore) write() { s.writes.Add(1) }

func (s *countingStore) CreateAccount(ctx context.Context, a *storage.Account) error {
	s.write()
	return s.Store.CreateAccount(ctx, a)
}

func (s *countingStore) GetAccount(ctx context.Context, id string) (*storage.Account, error) {
	s.read()
	return s.Store.GetAccount(ctx, id)
}

func (s *countingStore) AccountByThumbprint(ctx context.Context, tp string) (*storage.Account, error) {
	s.read()
	return s.Store.AccountByThumbprint(ctx, tp)
}

func (s *countingStore) UpdateAccount(ctx context.Context, a *storage.Account) error {
	s.write()
	return s.Store.UpdateAccount(ctx, a)
}

func (s *countingStore) CreateOrder(ctx context.Context, o *storage.Order, authzs []*storage.Authorization) error {
	s.write()
	return s.Store.CreateOrder(ctx, o, authzs)
}

func (s *countingStore) GetOrder(ctx context.Context, id string) (*storage.Order, error) {
	s.read()
	return s.Store.GetOrder(ctx, id)
}

func (s *countingStore) UpdateOrder(ctx context.Context, o *storage.Order) error {
	s.write()
	return s.Store.UpdateOrder(ctx, o)
}

func (s *countingStore) GetAuthz(ctx context.Context, id string) (*storage.Authorization, error) {
	s.read()
	return s.Store.GetAuthz(ctx, id)
}

func (s *countingStore) UpdateAuthz(ctx context.Context, a *storage.Authorization) error {
	s.write()
	return s.Store.UpdateAuthz(ctx, a)
}

func (s *countingStore) ValidAuthz(ctx context.Context, acct string, id storage.Identifier, wildcard bool, now time.Time) (*storage.Authorization, error) {
	s.read()
	return s.Store.ValidAuthz(ctx, acct, id, wildcard, now)
}

func (s *countingStore) StoreCertificate(ctx context.Context, c *storage.Certificate, o *storage.Order) error {
	s.write()
	return s.Store.StoreCertificate(ctx, c, o)
}

func (s *countingStore) GetCertificate(ctx context.Context, serial string) (*storage.Certificate, error) {
	s.read()
	return s.Store.GetCertificate(ctx, serial)
}

func (s *countingStore) UpdateCertificate(ctx context.Context, c *storage.Certificate) error {
	s.write()
	return s.Store.UpdateCertificate(ctx, c)
}

func (s *countingStore) GetRegistration(ctx context.Context, keyID string) (*storage.Registration, error) {
	s.read()
	return s.Store.GetRegistration(ctx, keyID)
}

// report adds the counts since the timer started, per issuance.
func (s *countingStore) report(b *testing.B, readsBefore, writesBefore int64) {
	if b.N > 0 {
		b.ReportMetric(float64(s.reads.Load()-readsBefore)/float64(b.N), "reads/op")
		b.ReportMetric(float64(s.writes.Load()-writesBefore)/float64(b.N), "writes/op")
	}
}
