package gateway

import (
	"bytes"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// stateNow is the fixed "now" the pure status functions are tested at.
var stateNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAuthzStatus(t *testing.T) {
	expires := stateNow.Add(time.Hour)
	tests := []struct {
		name   string
		stored string
		now    time.Time
		want   string
	}{
		{"pending before expiry stays pending", storage.StatusPending, expires.Add(-time.Nanosecond), storage.StatusPending},
		{"pending at expiry is expired", storage.StatusPending, expires, storage.StatusExpired},
		{"pending after expiry is expired", storage.StatusPending, expires.Add(time.Hour), storage.StatusExpired},
		{"valid before expiry stays valid", storage.StatusValid, expires.Add(-time.Nanosecond), storage.StatusValid},
		{"valid at expiry is expired", storage.StatusValid, expires, storage.StatusExpired},
		{"valid after expiry is expired", storage.StatusValid, expires.Add(time.Minute), storage.StatusExpired},
		{"invalid after expiry stays invalid", storage.StatusInvalid, expires.Add(time.Hour), storage.StatusInvalid},
		{"deactivated after expiry stays deactivated", storage.StatusDeactivated, expires.Add(time.Hour), storage.StatusDeactivated},
		{"revoked before expiry stays revoked", storage.StatusRevoked, stateNow, storage.StatusRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &storage.Authorization{Status: tt.stored, Expires: expires}
			if got := authzStatus(a, tt.now); got != tt.want {
				t.Fatalf("authzStatus(%s, expires%+v) = %s, want %s", tt.stored, tt.now.Sub(expires), got, tt.want)
			}
			if a.Status != tt.stored {
				t.Fatalf("authzStatus changed the stored status to %s", a.Status)
			}
		})
	}
}

func TestOrderStatus(t *testing.T) {
	const (
		P = storage.StatusPending
		V = storage.StatusValid
		I = storage.StatusInvalid
		D = storage.StatusDeactivated
		E = storage.StatusExpired
		R = storage.StatusRevoked
	)
	expires := stateNow.Add(time.Hour)
	before := expires.Add(-time.Nanosecond)
	tests := []struct {
		name   string
		stored string
		authzs []string
		now    time.Time
		want   string
	}{
		{"pending with a pending authz stays pending", P, []string{V, P}, before, storage.StatusPending},
		{"pending with all authzs valid is ready", P, []string{V, V, V}, before, storage.StatusReady},
		{"pending with one valid authz is ready", P, []string{V}, before, storage.StatusReady},
		{"ready with all authzs valid stays ready", storage.StatusReady, []string{V}, before, storage.StatusReady},
		{"pending with an invalid authz is invalid", P, []string{V, I, P}, before, storage.StatusInvalid},
		{"pending with a deactivated authz is invalid", P, []string{D, V}, before, storage.StatusInvalid},
		{"pending with an expired authz is invalid", P, []string{V, E}, before, storage.StatusInvalid},
		{"pending with a revoked authz is invalid", P, []string{R}, before, storage.StatusInvalid},
		{"invalid authz wins over a pending one listed first", P, []string{P, I}, before, storage.StatusInvalid},
		{"pending at its expiry is invalid", P, []string{P}, expires, storage.StatusInvalid},
		{"pending after its expiry is invalid even with valid authzs", P, []string{V}, expires.Add(time.Second), storage.StatusInvalid},
		{"ready after its expiry is invalid", storage.StatusReady, []string{V}, expires, storage.StatusInvalid},
		{"processing stays processing", storage.StatusProcessing, []string{V}, before, storage.StatusProcessing},
		{"processing past expiry stays processing", storage.StatusProcessing, []string{E}, expires.Add(time.Hour), storage.StatusProcessing},
		{"valid stays valid past expiry", V, []string{E}, expires.Add(time.Hour), storage.StatusValid},
		{"invalid stays invalid with valid authzs", I, []string{V}, before, storage.StatusInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &storage.Order{Status: tt.stored, Expires: expires}
			if got := orderStatus(o, tt.authzs, tt.now); got != tt.want {
				t.Fatalf("orderStatus(%s, %v) = %s, want %s", tt.stored, tt.authzs, got, tt.want)
			}
			if o.Status != tt.stored {
				t.Fatalf("orderStatus changed the stored status to %s", o.Status)
			}
		})
	}
}

func TestChallengeOutcome(t *testing.T) {
	problem := problemJSON(problem(ProblemIncorrectResponse, "wrong key authorization"))
	tests := []struct {
		name          string
		problem       []byte
		wantStatus    string
		wantValidated bool
		wantError     []byte
	}{
		{"success makes challenge and authz valid", nil, storage.StatusValid, true, nil},
		{"failure makes both invalid and records the problem", problem, storage.StatusInvalid, false, problem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &storage.Authorization{
				Status:  storage.StatusPending,
				Expires: stateNow.Add(time.Hour),
				Challenges: []storage.Challenge{
					{Type: challengeHTTP01, Status: storage.StatusPending},
					{Type: challengeDNS01, Status: storage.StatusProcessing},
				},
			}
			challengeOutcome(a, 1, tt.problem, stateNow)
			c := a.Challenges[1]
			if a.Status != tt.wantStatus || c.Status != tt.wantStatus {
				t.Fatalf("authz %s, challenge %s; want both %s", a.Status, c.Status, tt.wantStatus)
			}
			if got := c.Validated.Equal(stateNow); got != tt.wantValidated {
				t.Fatalf("validated = %v, want set at now: %v", c.Validated, tt.wantValidated)
			}
			if !bytes.Equal(c.Error, tt.wantError) {
				t.Fatalf("challenge error %s, want %s", c.Error, tt.wantError)
			}
			if other := a.Challenges[0]; other.Status != storage.StatusPending || other.Error != nil {
				t.Fatalf("the other challenge changed: %+v", other)
			}
		})
	}
}
