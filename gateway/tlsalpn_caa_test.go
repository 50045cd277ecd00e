package gateway

// tls-alpn-01 offered when listed, and CAA after validation and again at
// finalize.

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

func TestTLSALPN01_OfferedOnlyWhenListed(t *testing.T) {
	tests := []struct {
		name       string
		challenges []string
		ident      string
		want       []string
	}{
		{"default challenges", nil, "host.example.com", []string{challengeHTTP01, challengeDNS01}},
		{"listed", []string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}, "host.example.com",
			[]string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}},
		{"listed alone", []string{challengeTLSALPN01}, "host.example.com", []string{challengeTLSALPN01}},
		// RFC 8737 §3: tls-alpn-01 cannot validate a wildcard.
		{"wildcard gets only dns-01", []string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}, "*.example.com",
			[]string{challengeDNS01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			if tt.challenges != nil {
				g.h.cfg.Challenges = tt.challenges
			}
			c := g.newClient()
			c.register()
			_, o := c.newOrderFor(tt.ident)
			if got := challengeTypes(c.readAuthz(o.Authorizations[0])); !slices.Equal(got, tt.want) {
				t.Fatalf("authorization offers %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTLSALPN01_PostRunsTLSALPN01Validation(t *testing.T) {
	tests := []struct {
		name string
		id   identifier
	}{
		{"DNS name", identifier{Type: "dns", Value: "alpn.example.com"}},
		{"IPv6 address", identifier{Type: "ip", Value: "2001:db8::7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t, challengeHTTP01, challengeDNS01, challengeTLSALPN01)
			v := &recordingValidator{}
			g.h.validator = v
			c := g.newClient()
			c.register()
			_, o := c.newOrderIDs([]identifier{tt.id})
			a := c.readAuthz(o.Authorizations[0])
			ch := challengeOfType(t, a, challengeTLSALPN01)
			c.post(ch.URL, map[string]any{})
			a = c.waitAuthz(o.Authorizations[0], storage.StatusValid)
			if got := challengeOfType(t, a, challengeTLSALPN01).Status; got != storage.StatusValid {
				t.Fatalf("tls-alpn-01 challenge is %s, want valid", got)
			}
			tp, err := thumbprint(&jose.JSONWebKey{Key: c.key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			want := []validatorCall{{challengeTLSALPN01, tt.id.Value, ch.Token + "." + tp}}
			if got := v.callsOf(challengeTLSALPN01); !slices.Equal(got, want) {
				t.Fatalf("TLSALPN01 calls %v, want %v", got, want)
			}
			if n := v.count(challengeHTTP01) + v.count(challengeDNS01); n != 0 {
				t.Fatalf("%d http-01/dns-01 validations for a tls-alpn-01 POST", n)
			}
		})
	}
}

func TestCAA_RefusalAfterSuccessfulChallengeInvalidatesAuthorization(t *testing.T) {
	g := newGateway(t)
	v := &recordingValidator{caa: caaRefusal()}
	g.h.validator = v
	c := g.newClient()
	c.register()
	url, o := c.newOrderFor("caa.example.com")
	a := c.readAuthz(o.Authorizations[0])
	c.post(challengeOfType(t, a, challengeHTTP01).URL, map[string]any{})
	a = c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
	ch := challengeOfType(t, a, challengeHTTP01)
	if ch.Status != storage.StatusInvalid || ch.Error == nil || ch.Error.Type != problemNS+"caa" {
		t.Fatalf("challenge is %s with error %+v, want invalid with caa", ch.Status, ch.Error)
	}
	want := []validatorCall{{methodCAA, "caa.example.com", challengeHTTP01}}
	if got := v.callsOf(methodCAA); !slices.Equal(got, want) {
		t.Fatalf("CAA calls %v, want %v", got, want)
	}
	if v.count(challengeHTTP01) != 1 {
		t.Fatalf("CAA was checked without the challenge being validated first")
	}
	if o, _ = c.readOrder(url); o.Status != storage.StatusInvalid {
		t.Fatalf("order is %s, want invalid", o.Status)
	}
}

func TestCAA_NotCheckedAfterFailedChallenge(t *testing.T) {
	g := newGateway(t)
	v := &recordingValidator{failFirst: 1}
	g.h.validator = v
	c := g.newClient()
	c.register()
	_, o := c.newOrderFor("fails.example.com")
	c.post(challengeOfType(t, c.readAuthz(o.Authorizations[0]), challengeHTTP01).URL, map[string]any{})
	a := c.waitAuthz(o.Authorizations[0], storage.StatusInvalid)
	if ch := challengeOfType(t, a, challengeHTTP01); ch.Error == nil || ch.Error.Type != problemNS+"connection" {
		t.Fatalf("challenge error %+v, want the validation's own (connection)", ch.Error)
	}
	if n := v.count(methodCAA); n != 0 {
		t.Fatalf("CAA checked %d times after a failed challenge", n)
	}
}

func TestCAA_NotCheckedForAddresses(t *testing.T) {
	g := newIPGateway(t)
	v := &recordingValidator{caa: caaRefusal()}
	g.h.validator = v
	c := g.newClient()
	c.register()
	c.readyOrderIDs(challengeHTTP01, ipIDs("192.0.2.7", "2001:db8::1"))
	if n := v.count(methodCAA); n != 0 {
		t.Fatalf("CAA checked %d times for ip identifiers", n)
	}
}

func TestFinalize_RechecksCAAOnlyForValidationsOlderThan8Hours(t *testing.T) {
	tests := []struct {
		name          string
		ids           []identifier
		caaIdentities []string
		advance       time.Duration
		caa           error
		wantStatus    int
		wantType      string // problem type when refused
		wantRechecks  int
	}{
		{"older than 8h and CAA now forbids", dnsIDs("recheck.example.com"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusForbidden, "caa", 1},
		{"older than 8h and CAA still allows", dnsIDs("recheck.example.com"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, nil, http.StatusOK, "", 1},
		{"two names older than 8h, both forbidden", dnsIDs("a.example.com", "b.example.com"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusForbidden, "caa", 2},
		{"within 8h", dnsIDs("recheck.example.com"), []string{"ca.example.net"},
			caaRecheckAfter - time.Hour, caaRefusal(), http.StatusOK, "", 0},
		{"CAA checking off", dnsIDs("recheck.example.com"), nil,
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusOK, "", 0},
		{"ip identifiers", ipIDs("192.0.2.7"), []string{"ca.example.net"},
			caaRecheckAfter + time.Hour, caaRefusal(), http.StatusOK, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newIPGateway(t)
			clock := g.withClock()
			v := &recordingValidator{}
			g.h.validator = v
			g.h.cfg.CAAIdentities = tt.caaIdentities
			// Long enough that neither the order nor its authorizations
			// expire while the clock moves.
			g.h.cfg.AuthzLifetime = 72 * time.Hour
			g.h.cfg.OrderLifetime = 72 * time.Hour
			c := g.newClient()
			c.register()
			url, o := c.readyOrderIDs(challengeHTTP01, tt.ids)
			before := v.count(methodCAA)
			stored, err := g.store.GetOrder(context.Background(), orderID(url))
			if err != nil {
				t.Fatal(err)
			}

			clock.Advance(tt.advance)
			v.setCAA(tt.caa)
			var names, addrs []string
			for _, id := range tt.ids {
				if id.Type == "ip" {
					addrs = append(addrs, id.Value)
				} else {
					names = append(names, id.Value)
				}
			}
			r := c.post(o.Finalize, map[string]string{"csr": b64(sanCSR(t, mustKey(t), "", names, addrs...))})
			if r.status != tt.wantStatus {
				t.Fatalf("finalize: %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if got := v.count(methodCAA) - before; got != tt.wantRechecks {
				t.Fatalf("CAA checked %d times at finalize, want %d", got, tt.wantRechecks)
			}
			issued, _ := g.issuer.counts()
			if tt.wantStatus == http.StatusOK {
				if issued != 1 {
					t.Fatalf("issued %d certificates, want 1", issued)
				}
				return
			}
			if r.problemType() != problemNS+tt.wantType {
				t.Fatalf("problem %s, want %s", r.problemType(), tt.wantType)
			}
			if issued != 0 {
				t.Fatalf("issued %d certificates after a CAA refusal", issued)
			}
			after, err := g.store.GetOrder(context.Background(), orderID(url))
			if err != nil {
				t.Fatal(err)
			}
			if after.Version != stored.Version || after.Status != stored.Status {
				t.Fatalf("order record moved from v%d %s to v%d %s", stored.Version, stored.Status, after.Version, after.Status)
			}
			if o, _ = c.readOrder(url); o.Status != storage.StatusReady {
				t.Fatalf("order is %s after a CAA refusal, want ready", o.Status)
			}
		})
	}
}
