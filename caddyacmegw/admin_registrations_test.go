package caddyacmegw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// proceduresIssuer is the test CA with named procedures, as the cm
// issuer has.
type proceduresIssuer struct {
	*testCA
	names []string
}

func (p proceduresIssuer) ProcedureNames() []string { return p.names }

// A registration may name only a procedure that the gateway's issuer has,
// on create and on edit; an issuer without procedures takes none.
func TestAdmin_RegistrationProcedureMustBeTheIssuers(t *testing.T) {
	e := newAdminEnv(t)
	e.must(http.StatusBadRequest, http.MethodPost, "registrations", map[string]any{"procedure": "tls-server"}, nil)

	e.g.h.issuer = proceduresIssuer{e.g.issuer, []string{"tls-server", "tls-client"}}
	e.must(http.StatusBadRequest, http.MethodPost, "registrations", map[string]any{"procedure": "tls-other"}, nil)
	reg := e.createRegistration(map[string]any{"procedure": "tls-client"})
	e.must(http.StatusBadRequest, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"procedure": "tls-other"}, nil)
	var v registrationView
	e.must(http.StatusOK, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"procedure": "tls-server"}, &v)
	if v.Procedure != "tls-server" {
		t.Fatalf("procedure %q after the edit, want tls-server", v.Procedure)
	}
	var cleared registrationView
	e.must(http.StatusOK, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"procedure": nil}, &cleared)
	if cleared.Procedure != "" {
		t.Fatalf("procedure %q after clearing it", v.Procedure)
	}
}

func TestAdmin_RegistrationLifecycle(t *testing.T) {
	e := newAdminEnv(t)
	e.g.h.issuer = proceduresIssuer{e.g.issuer, []string{"tls-server"}}
	officer := []string{officerHeader, "alice"}

	var created registrationView
	raw := e.must(http.StatusCreated, http.MethodPost, "registrations", map[string]any{
		"description":     "web team",
		"allowed_domains": []string{"Example.COM.", "*.Web.Example.com", "example.com"},
		"expires_in":      "720h",
		"procedure":       "tls-server",
	}, &created, officer...)

	key, err := base64.RawURLEncoding.DecodeString(created.HMACKey)
	if err != nil || len(key) != 32 {
		t.Fatalf("hmac_key %q: %d bytes, %v", created.HMACKey, len(key), err)
	}
	if kid, err := base64.RawURLEncoding.DecodeString(created.KeyID); err != nil || len(kid) != 16 {
		t.Fatalf("default key_id %q is not 16 random bytes", created.KeyID)
	}
	if got := strings.Join(created.AllowedDomains, " "); got != "*.web.example.com example.com" {
		t.Errorf("allowed_domains %q, want normalized, deduplicated and sorted", got)
	}
	if created.Status != storage.RegistrationActive || created.CreatedBy != "alice" || created.Procedure != "tls-server" {
		t.Errorf("created %+v", created)
	}
	if created.Expires == nil || time.Until(*created.Expires) < 719*time.Hour {
		t.Errorf("expires %v, want about 720h from now", created.Expires)
	}
	stored := e.g.registration(created.KeyID)
	if !bytes.Equal(stored.HMACKey, key) {
		t.Fatal("the key answered is not the key stored")
	}
	_ = raw

	// The key is shown once: never by GET, list or PATCH.
	noKey := func(what string, raw []byte) {
		t.Helper()
		if bytes.Contains(raw, []byte("hmac_key")) || bytes.Contains(raw, []byte(created.HMACKey)) {
			t.Errorf("%s shows the HMAC key: %s", what, raw)
		}
	}
	var got registrationView
	noKey("GET", e.must(http.StatusOK, http.MethodGet, "registrations/"+created.KeyID, nil, &got))
	if got.KeyID != created.KeyID || got.Description != "web team" {
		t.Errorf("GET answered %+v", got)
	}
	var list struct {
		Registrations []registrationView `json:"registrations"`
		Next          string             `json:"next"`
	}
	noKey("list", e.must(http.StatusOK, http.MethodGet, "registrations", nil, &list))
	if len(list.Registrations) != 1 || list.Registrations[0].KeyID != created.KeyID || list.Next != "" {
		t.Errorf("list answered %+v", list)
	}

	var patched registrationView
	noKey("PATCH", e.must(http.StatusOK, http.MethodPatch, "registrations/"+created.KeyID, map[string]any{
		"status": "disabled", "expires": nil, "allowed_domains": []string{"bücher.example"}, "description": "moved",
	}, &patched, officerHeader, "bob"))
	if patched.Status != storage.RegistrationDisabled || patched.Expires != nil || patched.Description != "moved" ||
		len(patched.AllowedDomains) != 1 || patched.AllowedDomains[0] != "xn--bcher-kva.example" || patched.UpdatedBy != "bob" {
		t.Errorf("patched %+v", patched)
	}
	if reg := e.g.registration(created.KeyID); reg.Status != storage.RegistrationDisabled || !reg.Expires.IsZero() {
		t.Errorf("stored after PATCH: %+v", reg)
	}
	// A PATCH that changes nothing writes nothing.
	e.must(http.StatusOK, http.MethodPatch, "registrations/"+created.KeyID, map[string]any{"status": "disabled"}, nil)

	if status, raw := e.do(http.MethodDelete, "registrations/"+created.KeyID, nil, officer...); status != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("DELETE: %d %s", status, raw)
	}
	e.must(http.StatusNotFound, http.MethodGet, "registrations/"+created.KeyID, nil, nil)

	entries := e.auditEntries()
	var actions []string
	for _, a := range entries {
		actions = append(actions, a.Action+" "+a.Actor+" "+a.Target)
		if bytes.Contains(a.Detail, []byte(created.HMACKey)) || bytes.Contains(a.Detail, []byte("hmac")) {
			t.Errorf("audit detail holds the key: %s", a.Detail)
		}
		if a.ID == "" || a.Time.IsZero() {
			t.Errorf("audit entry without id or time: %+v", a)
		}
	}
	want := []string{
		"registration.create alice " + created.KeyID,
		"registration.update bob " + created.KeyID,
		"registration.delete alice " + created.KeyID,
	}
	if strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	var detail struct {
		Changes map[string]struct{ From, To any } `json:"changes"`
	}
	if err := json.Unmarshal(entries[1].Detail, &detail); err != nil || detail.Changes["status"].To != "disabled" || detail.Changes["status"].From != "active" {
		t.Errorf("update detail %s", entries[1].Detail)
	}
}

func TestAdmin_CreateWithKeyIDAndExpiresTime(t *testing.T) {
	e := newAdminEnv(t)
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	v := e.createRegistration(map[string]any{"key_id": "team-a_1", "expires": at.Format(time.RFC3339)})
	if v.KeyID != "team-a_1" || v.Expires == nil || !v.Expires.Equal(at) || len(v.AllowedDomains) != 0 {
		t.Fatalf("created %+v", v)
	}
	e.must(http.StatusConflict, http.MethodPost, "registrations", map[string]any{"key_id": "team-a_1"}, nil)
	// Expiry by duration in days, as Caddy's durations allow.
	var p registrationView
	e.must(http.StatusOK, http.MethodPatch, "registrations/team-a_1", map[string]any{"expires_in": "2d"}, &p)
	if p.Expires == nil || time.Until(*p.Expires) < 47*time.Hour {
		t.Fatalf("expires_in 2d gave %v", p.Expires)
	}
}

// conflictingStore makes the first n registration updates lose their
// compare-and-swap, as if another officer had written in between.
type conflictingStore struct {
	storage.Store
	mu sync.Mutex
	n  int
}

func (s *conflictingStore) UpdateRegistration(ctx context.Context, r *storage.Registration) error {
	s.mu.Lock()
	lose := s.n > 0
	s.n--
	s.mu.Unlock()
	if lose {
		return storage.ErrConflict
	}
	return s.Store.UpdateRegistration(ctx, r)
}

func TestAdmin_PatchRetriesOnceOnConflict(t *testing.T) {
	for _, tc := range []struct {
		losses int
		want   int
	}{{1, http.StatusOK}, {2, http.StatusConflict}} {
		t.Run(fmt.Sprint(tc.losses, " lost"), func(t *testing.T) {
			e := newAdminEnv(t)
			e.createRegistration(map[string]any{"key_id": "k"})
			e.g.h.store = &conflictingStore{Store: e.g.store, n: tc.losses}
			e.must(tc.want, http.MethodPatch, "registrations/k", map[string]any{"status": "disabled"}, nil)
			wantStatus := map[int]string{http.StatusOK: storage.RegistrationDisabled, http.StatusConflict: storage.RegistrationActive}[tc.want]
			if got := e.g.registration("k").Status; got != wantStatus {
				t.Fatalf("status %s, want %s", got, wantStatus)
			}
			if n := len(e.auditEntries()); n != map[int]int{http.StatusOK: 2, http.StatusConflict: 1}[tc.want] {
				t.Fatalf("%d audit entries", n)
			}
		})
	}
}

// A registration holds the e-mail addresses an officer vouches for, set on
// create and on edit, checked as account contacts are.
func TestAdmin_RegistrationEmails(t *testing.T) {
	e := newAdminEnv(t)
	reg := e.createRegistration(map[string]any{"emails": []string{"pki@example.com", "ops@example.com", "pki@example.com"}})
	if got := strings.Join(reg.Emails, " "); got != "ops@example.com pki@example.com" {
		t.Fatalf("emails %q, want deduplicated and sorted", got)
	}
	if got := e.g.registration(reg.KeyID).Emails; len(got) != 2 {
		t.Fatalf("stored emails %q", got)
	}
	for _, bad := range []string{"not an address", "mailto:ops@example.com", "ops@localhost", "ops\u202e@example.com"} {
		e.must(http.StatusBadRequest, http.MethodPost, "registrations", map[string]any{"emails": []string{bad}}, nil)
		e.must(http.StatusBadRequest, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"emails": []string{bad}}, nil)
	}
	var v registrationView
	e.must(http.StatusOK, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"emails": []string{"new@example.com"}}, &v)
	if strings.Join(v.Emails, " ") != "new@example.com" {
		t.Fatalf("emails after the edit %q", v.Emails)
	}
	e.must(http.StatusOK, http.MethodPatch, "registrations/"+reg.KeyID, map[string]any{"emails": []string{}}, &v)
	if v.Emails == nil || len(v.Emails) != 0 {
		t.Fatalf("emails after clearing %#v, want []", v.Emails)
	}
}
