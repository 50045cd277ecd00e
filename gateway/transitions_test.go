package gateway

import (
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestSetAccountStatus(t *testing.T) {
	tests := []struct {
		from, requested, want string
		refused               bool
	}{
		{storage.StatusValid, "", storage.StatusValid, false},
		{storage.StatusValid, storage.StatusValid, storage.StatusValid, false},
		{storage.StatusValid, storage.StatusDeactivated, storage.StatusDeactivated, false},
		{storage.StatusDeactivated, storage.StatusDeactivated, storage.StatusDeactivated, false},
		{storage.StatusValid, storage.StatusRevoked, storage.StatusValid, true},
		{storage.StatusDeactivated, storage.StatusValid, storage.StatusDeactivated, true},
	}
	for _, tt := range tests {
		a := &storage.Account{Status: tt.from}
		err := SetAccountStatus(a, tt.requested)
		if (err != nil) != tt.refused || a.Status != tt.want {
			t.Errorf("%s asked %q: %s, %v; want %s, refused %v", tt.from, tt.requested, a.Status, err, tt.want, tt.refused)
		}
	}
}

func TestDeactivateAuthz(t *testing.T) {
	now := time.Now()
	tests := []struct {
		status  string
		expires time.Time
		refused bool
	}{
		{storage.StatusPending, now.Add(time.Hour), false},
		{storage.StatusValid, now.Add(time.Hour), false},
		{storage.StatusValid, now.Add(-time.Second), true}, // expired
		{storage.StatusInvalid, now.Add(time.Hour), true},
		{storage.StatusDeactivated, now.Add(time.Hour), true},
	}
	for _, tt := range tests {
		a := &storage.Authorization{Status: tt.status, Expires: tt.expires}
		err := deactivateAuthz(a, now)
		if tt.refused {
			if err == nil || a.Status != tt.status {
				t.Errorf("%s (expires %v): deactivated to %s, %v", tt.status, tt.expires, a.Status, err)
			}
			continue
		}
		if err != nil || a.Status != storage.StatusDeactivated {
			t.Errorf("%s: %s, %v; want deactivated", tt.status, a.Status, err)
		}
	}
}

// challengeProcessing leaves the stored record as it was: the copy is
// what goes to compare-and-swap.
func TestChallengeProcessing(t *testing.T) {
	a := &storage.Authorization{Status: storage.StatusPending, Challenges: []storage.Challenge{
		{Type: challengeHTTP01, Status: storage.StatusPending}, {Type: challengeDNS01, Status: storage.StatusPending}}}
	p := challengeProcessing(a, 1)
	if p.Challenges[1].Status != storage.StatusProcessing || p.Challenges[0].Status != storage.StatusPending || p.Status != storage.StatusPending {
		t.Fatalf("processing copy %+v", p)
	}
	if a.Challenges[1].Status != storage.StatusPending {
		t.Fatal("the original changed")
	}
}

func TestOrderTransitions(t *testing.T) {
	now := time.Now()
	o := &storage.Order{Status: storage.StatusReady}
	orderProcessing(o, []byte("csr"), now)
	if o.Status != storage.StatusProcessing || string(o.CSR) != "csr" || !o.UpdatedAt.Equal(now) {
		t.Fatalf("processing: %+v", o)
	}
	issued := *o
	issued.IssuerRef = "ref"
	orderIssued(&issued, "abc", now)
	if issued.Status != storage.StatusValid || issued.CertificateSerial != "abc" || issued.CSR != nil || issued.IssuerRef != "" {
		t.Fatalf("issued: %+v", issued)
	}
	failed := *o
	orderFailed(&failed, []byte(`{"type":"x"}`), now)
	if failed.Status != storage.StatusInvalid || string(failed.Error) != `{"type":"x"}` || failed.CSR != nil || failed.CertificateSerial != "" {
		t.Fatalf("failed: %+v", failed)
	}
}

func TestCertificateRevoked(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	c := &storage.Certificate{Status: storage.StatusValid}
	CertificateRevoked(c, 4, now)
	if c.Status != storage.StatusRevoked || c.RevocationReason != 4 || !c.RevokedAt.Equal(now) || c.RevokedAt.Location() != time.UTC {
		t.Fatalf("%+v", c)
	}
}
