package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
	"github.com/caddyacmegw/caddyacmegw/storage/memory"
	"github.com/caddyacmegw/caddyacmegw/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store { return memory.New() })
}

// BenchmarkIssuance measures one order's life: create it with a new
// authorization, validate that, then store the certificate.
func BenchmarkIssuance(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	acct := &storage.Account{ID: "bench", KeyThumbprint: "bench", KeyJWK: []byte(`{"kty":"EC"}`), Status: storage.StatusValid}
	if err := s.CreateAccount(ctx, acct); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i)
		ident := storage.Identifier{Type: "dns", Value: id + ".example.com"}
		a := &storage.Authorization{
			ID: "a" + id, AccountID: acct.ID, Identifier: ident, Status: storage.StatusPending, Expires: now.Add(time.Hour),
			Challenges: []storage.Challenge{{Type: "http-01", Token: id, Status: storage.StatusPending}},
		}
		o := &storage.Order{
			ID: "o" + id, AccountID: acct.ID, Status: storage.StatusPending, Identifiers: []storage.Identifier{ident},
			AuthzIDs: []string{a.ID}, Expires: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now,
		}
		if err := s.CreateOrder(ctx, o, []*storage.Authorization{a}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ValidAuthz(ctx, acct.ID, ident, false, now); err == nil {
			b.Fatal("pending authz found valid")
		}
		a.Status, a.Challenges[0].Status = storage.StatusValid, storage.StatusValid
		if err := s.UpdateAuthz(ctx, a); err != nil {
			b.Fatal(err)
		}
		o.Status = storage.StatusProcessing
		if err := s.UpdateOrder(ctx, o); err != nil {
			b.Fatal(err)
		}
		o.Status, o.CertificateSerial = storage.StatusValid, "1"+id
		c := &storage.Certificate{Serial: o.CertificateSerial, AccountID: acct.ID, OrderID: o.ID, Names: []string{ident.Value}, ChainPEM: make([]byte, 2048)}
		if err := s.StoreCertificate(ctx, c, o); err != nil {
			b.Fatal(err)
		}
		if _, err := s.GetCertificate(ctx, c.Serial); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetOrderParallel measures concurrent reads of one order.
func BenchmarkGetOrderParallel(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	o := &storage.Order{ID: "o", AccountID: "acct", Identifiers: []storage.Identifier{{Type: "dns", Value: "example.com"}}, AuthzIDs: []string{"a"}}
	if err := s.CreateOrder(ctx, o, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetOrder(ctx, o.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
