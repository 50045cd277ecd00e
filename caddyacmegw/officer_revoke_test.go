package caddyacmegw

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// downForUpdates is a store that takes no certificate change.
type downForUpdates struct{ storage.Store }

func (downForUpdates) UpdateCertificate(context.Context, *storage.Certificate) error {
	return fmt.Errorf("test: %w", storage.ErrUnavailable)
}

// A revocation the issuer made but storage never took is audited as not
// recorded, and the officer is told so rather than to try again.
func TestAdmin_RevocationNotRecordedIsAuditedAndSaid(t *testing.T) {
	e := newAdminEnv(t)
	g := e.g
	acct, _ := g.mustAccount("", nil)
	serial := g.issue(acct, "lost.example.com").SerialNumber.Text(16)
	nonces, err := gateway.NewNonceStore(time.Hour, 10, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if g.h.gw, err = gateway.New(gateway.Config{Name: g.h.Name, PathPrefix: "/acme", Store: downForUpdates{g.store},
		Nonces: nonces, Issuer: g.issuer, Validator: acceptAll{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.h.gw.Close)

	status, body := e.do(http.MethodPost, "certificates/"+serial+"/revoke", map[string]any{"reason": 1}, officerHeader, "carol")
	if status != http.StatusInternalServerError || !strings.Contains(string(body), "is revoked at the issuer, but recording it failed") {
		t.Fatalf("revoke with storage down: %d %s", status, body)
	}
	if reason, ok := g.issuer.Revocation(serial); !ok || reason != 1 {
		t.Fatalf("issuer revocation %d, %v; want 1", reason, ok)
	}
	trail := e.auditEntries()
	last := trail[len(trail)-1]
	var detail struct {
		Reason   int   `json:"reason"`
		Recorded *bool `json:"recorded"`
	}
	if err := json.Unmarshal(last.Detail, &detail); err != nil || last.Action != "certificate.revoke" || last.Actor != "carol" ||
		last.Target != serial || detail.Reason != 1 || detail.Recorded == nil || *detail.Recorded {
		t.Fatalf("audit entry %+v (%v)", last, err)
	}
}
