package gateway

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// The negative suite: every case sends one malformed or hostile request and
// expects one exact problem, a problem+json answer with a fresh nonce, and
// no change to any record the case set up (see negCase.run).

func runNegative(t *testing.T, cases []negCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

func withAccount(s *negScene) { s.a = s.registered() }

func withStranger(s *negScene) { s.a = s.stranger() }

func withTwoAccounts(s *negScene) { s.a, s.b = s.registered(), s.registered() }

var orderPayload = map[string]any{"identifiers": negDNSIDs("x.example.com")}

func (s *negScene) url(p string) string { return s.g.base + p }

func TestNegative_Account(t *testing.T) {
	newAccount := func(payload map[string]any) func(s *negScene) *reply {
		return func(s *negScene) *reply { return s.a.post(s.url(pathNewAccount), payload) }
	}
	update := func(payload map[string]any) func(s *negScene) *reply {
		return func(s *negScene) *reply { return s.a.post(s.a.kid, payload) }
	}
	deactivated := func(s *negScene) {
		withAccount(s)
		if r := s.a.post(s.a.kid, map[string]any{"status": "deactivated"}); r.status != http.StatusOK {
			s.t.Fatalf("deactivating: %d %s", r.status, r.body)
		}
	}
	tooMany := make([]string, maxContacts+1)
	for i := range tooMany {
		tooMany[i] = "mailto:admin" + string(rune('a'+i)) + "@example.com"
	}
	runNegative(t, []negCase{{
		name:  "RejectsTelContact",
		setup: withStranger,
		send:  newAccount(map[string]any{"termsOfServiceAgreed": true, "contact": []string{"tel:+15555550100"}}),
		typ:   "unsupportedContact", status: http.StatusBadRequest,
	}, {
		name:  "RejectsMailtoWithoutAddress",
		setup: withStranger,
		send:  newAccount(map[string]any{"termsOfServiceAgreed": true, "contact": []string{"mailto:not-an-address"}}),
		typ:   "invalidContact", status: http.StatusBadRequest,
	}, {
		name:  "RejectsTooManyContacts",
		setup: withStranger,
		send:  newAccount(map[string]any{"termsOfServiceAgreed": true, "contact": tooMany}),
		typ:   "invalidContact", status: http.StatusBadRequest,
	}, {
		name:  "OnlyReturnExistingRefusesUnknownKey",
		setup: withStranger,
		send:  newAccount(map[string]any{"onlyReturnExisting": true}),
		typ:   "accountDoesNotExist", status: http.StatusBadRequest,
	}, {
		name:  "RejectsUpdateToStatusPending",
		setup: withAccount,
		send:  update(map[string]any{"status": "pending"}),
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsUpdateToStatusRevoked",
		setup: withAccount,
		send:  update(map[string]any{"status": "revoked"}),
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsUpdateToTelContact",
		setup: withAccount,
		send:  update(map[string]any{"contact": []string{"tel:+15555550100"}}),
		typ:   "unsupportedContact", status: http.StatusBadRequest,
	}, {
		name:  "RejectsUpdateOfAnotherAccount",
		setup: withTwoAccounts,
		send: func(s *negScene) *reply {
			return s.a.post(s.b.kid, map[string]any{"contact": []string{"mailto:thief@example.com"}})
		},
		typ: "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsOrdersListOfAnotherAccount",
		setup: func(s *negScene) { withTwoAccounts(s); s.pendingOrder(s.b, "list.example.com") },
		send:  func(s *negScene) *reply { return s.a.post(s.b.kid+"/orders", nil) },
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsOrderByDeactivatedAccount",
		setup: deactivated,
		send:  func(s *negScene) *reply { return s.a.post(s.url(pathNewOrder), orderPayload) },
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsNewAccountWithKeyOfDeactivatedAccount",
		setup: deactivated,
		send: func(s *negScene) *reply {
			return s.a.negSend(s.url(pathNewAccount), map[string]any{"termsOfServiceAgreed": true}, func(h map[string]any) {
				delete(h, "kid")
				h["jwk"] = negJWK(s.a.key)
			})
		},
		typ: "unauthorized", status: http.StatusForbidden,
	}})
}

func TestNegative_NewOrder(t *testing.T) {
	order := func(payload map[string]any) func(s *negScene) *reply {
		return func(s *negScene) *reply { return s.a.post(s.url(pathNewOrder), payload) }
	}
	wantIdentifier := func(t *testing.T, _ *negScene, _ *reply, p *Problem) {
		if p.Identifier == nil || len(p.Subproblems) != 0 {
			t.Errorf("a single refused identifier: got identifier %+v and %d subproblems", p.Identifier, len(p.Subproblems))
		}
	}
	now := time.Now().UTC()
	cases := []negCase{{
		name:  "RejectsNoIdentifiers",
		setup: withAccount,
		send:  order(map[string]any{"identifiers": []identifier{}}),
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsIPIdentifier",
		setup: withAccount,
		send:  order(map[string]any{"identifiers": []identifier{{Type: "ip", Value: "192.0.2.1"}}}),
		typ:   "unsupportedIdentifier", status: http.StatusBadRequest, check: wantIdentifier,
	}, {
		name:  "RejectsEmailIdentifier",
		setup: withAccount,
		send:  order(map[string]any{"identifiers": []identifier{{Type: "email", Value: "admin@example.com"}}}),
		typ:   "unsupportedIdentifier", status: http.StatusBadRequest, check: wantIdentifier,
	}, {
		name:  "RejectsEmptyPayload",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.a.post(s.url(pathNewOrder), nil) },
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsNotAfterBeforeNotBefore",
		setup: withAccount,
		send: order(map[string]any{
			"identifiers": negDNSIDs("x.example.com"),
			"notBefore":   now.Add(2 * time.Hour).Format(time.RFC3339),
			"notAfter":    now.Add(time.Hour).Format(time.RFC3339),
		}),
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsNotBeforeFurtherBackThanMaxBackdate",
		setup: withAccount,
		send: order(map[string]any{
			"identifiers": negDNSIDs("x.example.com"),
			"notBefore":   now.Add(-maxBackdate - 5*time.Minute).Format(time.RFC3339),
		}),
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsValidityBeyondIssuerMaximum",
		setup: withAccount,
		send: order(map[string]any{
			"identifiers": negDNSIDs("x.example.com"),
			"notAfter":    now.Add(48 * time.Hour).Format(time.RFC3339),
		}),
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsEachBadNameInASubproblem",
		setup: withAccount,
		send:  order(map[string]any{"identifiers": negDNSIDs("ok.example.com", "under_score.example.com", "example.com.", "a.*.example.com")}),
		typ:   "rejectedIdentifier", status: http.StatusBadRequest,
		check: func(t *testing.T, _ *negScene, _ *reply, p *Problem) {
			var got []string
			for _, sub := range p.Subproblems {
				if sub.Type != problemNS+"rejectedIdentifier" || sub.Identifier == nil {
					t.Errorf("subproblem %+v", sub)
					continue
				}
				got = append(got, sub.Identifier.Value)
			}
			slices.Sort(got)
			if want := []string{"a.*.example.com", "example.com.", "under_score.example.com"}; !slices.Equal(got, want) {
				t.Errorf("subproblems name %v, want %v", got, want)
			}
		},
	}}
	badNames := []struct{ behaviour, name string }{
		{"Underscore", "under_score.example.com"},
		{"LabelLongerThan63", strings.Repeat("a", 64) + ".example.com"},
		{"TrailingDot", "example.com."},
		{"BareTLD", "com"},
		{"DoubleWildcard", "*.*.example.com"},
		{"WildcardNotLeftmost", "a.*.example.com"},
		{"UnicodeNotALabel", "bücher.example.com"},
	}
	for _, bn := range badNames {
		cases = append(cases, negCase{
			name:  "RejectsName" + bn.behaviour,
			setup: withAccount,
			send:  order(map[string]any{"identifiers": negDNSIDs(bn.name)}),
			typ:   "rejectedIdentifier", status: http.StatusBadRequest, check: wantIdentifier,
		})
	}
	runNegative(t, cases)
}

func TestNegative_Finalize(t *testing.T) {
	names := []string{"a.example.com", "b.example.com"}
	ready := func(s *negScene) { withAccount(s); s.readyOrder(s.a, names...) }
	finalize := func(csr func(s *negScene) []byte) func(s *negScene) *reply {
		return func(s *negScene) *reply {
			return s.a.post(s.order.Finalize, map[string]string{"csr": b64(csr(s))})
		}
	}
	withKey := func(key func(t *testing.T) crypto.Signer) func(s *negScene) []byte {
		return func(s *negScene) []byte { return csrWithKey(s.t, key(s.t), names...) }
	}
	runNegative(t, []negCase{{
		name:  "RejectsOrderNotReady",
		setup: func(s *negScene) { withAccount(s); s.pendingOrder(s.a, names...) },
		send:  finalize(func(s *negScene) []byte { csr, _ := csrFor(s.t, names...); return csr }),
		typ:   "orderNotReady", status: http.StatusForbidden,
	}, {
		name:  "RejectsCSRWithExtraName",
		setup: ready,
		send:  finalize(func(s *negScene) []byte { csr, _ := csrFor(s.t, append(names, "c.example.com")...); return csr }),
		typ:   "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCSRMissingAName",
		setup: ready,
		send:  finalize(func(s *negScene) []byte { csr, _ := csrFor(s.t, names[0]); return csr }),
		typ:   "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCSRWithRSA1024Key",
		setup: ready,
		send:  finalize(withKey(func(t *testing.T) crypto.Signer { return negRSAKey(t, 1024) })),
		typ:   "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCSRWithP521Key",
		setup: ready,
		send:  finalize(withKey(func(t *testing.T) crypto.Signer { return negECKey(t, elliptic.P521()) })),
		typ:   "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCSRWithAccountKey",
		setup: ready,
		send:  finalize(func(s *negScene) []byte { return csrWithKey(s.t, s.a.key, names...) }),
		typ:   "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCSRWithBadSignature",
		setup: ready,
		send: finalize(func(s *negScene) []byte {
			csr, _ := csrFor(s.t, names...)
			csr[len(csr)-1] ^= 0xff // last byte of the signature
			return csr
		}),
		typ: "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCSRNotBase64url",
		setup: ready,
		send: func(s *negScene) *reply {
			return s.a.post(s.order.Finalize, map[string]string{"csr": "MIIB+not/base64url=="})
		},
		typ: "badCSR", status: http.StatusBadRequest,
	}, {
		name:  "RejectsOrderOfAnotherAccount",
		setup: func(s *negScene) { withTwoAccounts(s); s.readyOrder(s.b, names...) },
		send:  finalize(func(s *negScene) []byte { csr, _ := csrFor(s.t, names...); return csr }),
		typ:   "unauthorized", status: http.StatusForbidden,
	}})
}

func TestNegative_Challenge(t *testing.T) {
	runNegative(t, []negCase{{
		name: "RejectsWithRateLimitedWhenValidationQueueIsFull",
		setup: func(s *negScene) {
			withAccount(s)
			s.pendingOrder(s.a, "queued.example.com")
			// One slot, taken, and every waiting place taken too.
			v := NewValidationPool(1)
			s.g.h.validating = v
			for i := range 1 + queuedPerSlot {
				v.start("filler-"+strconv.Itoa(i), "filler", false, func(ctx context.Context) { <-ctx.Done() })
			}
		},
		send: func(s *negScene) *reply {
			var a authzBody
			s.a.post(s.order.Authorizations[0], nil).decode(s.t, &a)
			return s.a.post(a.Challenges[0].URL, map[string]any{})
		},
		typ: "rateLimited", status: http.StatusTooManyRequests,
		check: func(t *testing.T, _ *negScene, r *reply, _ *Problem) {
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		},
	}})
}

func TestNegative_OtherAccountsResources(t *testing.T) {
	othersOrder := func(s *negScene) { withTwoAccounts(s); s.pendingOrder(s.b, "theirs.example.com") }
	challengeURL := func(s *negScene) string {
		var a authzBody
		s.b.post(s.order.Authorizations[0], nil).decode(s.t, &a)
		return a.Challenges[0].URL
	}
	runNegative(t, []negCase{{
		name:  "RejectsReadingOrder",
		setup: othersOrder,
		send:  func(s *negScene) *reply { return s.a.post(s.orderURL, nil) },
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsReadingAuthorization",
		setup: othersOrder,
		send:  func(s *negScene) *reply { return s.a.post(s.order.Authorizations[0], nil) },
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsDeactivatingAuthorization",
		setup: othersOrder,
		send: func(s *negScene) *reply {
			return s.a.post(s.order.Authorizations[0], map[string]any{"status": "deactivated"})
		},
		typ: "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsStartingChallenge",
		setup: othersOrder,
		send:  func(s *negScene) *reply { return s.a.post(challengeURL(s), map[string]any{}) },
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsDownloadingCertificate",
		setup: func(s *negScene) { withTwoAccounts(s); s.issued(s.b, "theirs.example.com") },
		send:  func(s *negScene) *reply { return s.a.post(s.certURL, nil) },
		typ:   "unauthorized", status: http.StatusForbidden,
	}})
}

func TestNegative_Revoke(t *testing.T) {
	ownCert := func(s *negScene) { withAccount(s); s.issued(s.a, "rv.example.com") }
	revoke := func(reason int) func(s *negScene) *reply {
		return func(s *negScene) *reply {
			return s.a.post(s.url(pathRevoke), map[string]any{"certificate": b64(s.leaf), "reason": reason})
		}
	}
	cases := []negCase{{
		name:  "RejectsOtherAccountWithoutAuthorizations",
		setup: func(s *negScene) { withTwoAccounts(s); s.issued(s.b, "theirs.example.com") },
		send:  revoke(1),
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsCertificateNotIssuedHere",
		setup: withAccount,
		send: func(s *negScene) *reply {
			der, _ := negSelfSigned(s.t, big.NewInt(4242), "rv.example.com")
			return s.a.post(s.url(pathRevoke), map[string]any{"certificate": b64(der)})
		},
		typ: "malformed", status: http.StatusNotFound,
	}, {
		name:  "RejectsForgedCertificateWithIssuedSerial",
		setup: ownCert,
		send: func(s *negScene) *reply {
			// An attacker copies the serial into a certificate of its own
			// key and signs the revocation with that key.
			leaf, err := x509.ParseCertificate(s.leaf)
			if err != nil {
				s.t.Fatal(err)
			}
			der, key := negSelfSigned(s.t, leaf.SerialNumber, "rv.example.com")
			s.keysWithoutAccount = append(s.keysWithoutAccount, key)
			h := map[string]any{"alg": "ES256", "nonce": s.g.nonce(), "url": s.url(pathRevoke), "jwk": negJWK(key)}
			body := negFlatJWS(s.t, key, h, marshalPayload(s.t, map[string]any{"certificate": b64(der)}))
			return s.g.send(s.url(pathRevoke), "application/jose+json", body)
		},
		typ: "malformed", status: http.StatusNotFound,
	}, {
		// Finalize no longer stores such a certificate (matchesOrder); one
		// stored before, or by another path, must not be revocable by any
		// account: "valid authorizations for every name" holds vacuously.
		name:  "RejectsOtherAccountForCertificateWithoutNames",
		setup: func(s *negScene) { withTwoAccounts(s); s.namelessCert(s.b) },
		send:  revoke(1),
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name: "RejectsJWKThatIsNotTheCertificateKey",
		setup: func(s *negScene) {
			ownCert(s)
			s.b = s.stranger()
		},
		send: func(s *negScene) *reply {
			return s.b.post(s.url(pathRevoke), map[string]any{"certificate": b64(s.leaf)})
		},
		typ: "unauthorized", status: http.StatusForbidden,
	}}
	for _, reason := range []int{2, 6, 7, 99} {
		cases = append(cases, negCase{
			name:  "RejectsReason" + strconv.Itoa(reason),
			setup: ownCert,
			send:  revoke(reason),
			typ:   "badRevocationReason", status: http.StatusBadRequest,
		})
	}
	runNegative(t, cases)
}

// namelessCert stores, for an order of owner, a certificate from the test
// CA without DNS names, kept in s.
func (s *negScene) namelessCert(owner *client) {
	s.pendingOrder(owner, "nameless.example.com")
	ctx := context.Background()
	o, err := s.g.store.GetOrder(ctx, path.Base(s.orderURL))
	if err != nil {
		s.t.Fatal(err)
	}
	ca := s.g.issuer
	key := negECKey(s.t, elliptic.P256())
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "nameless.example.com"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, key.Public(), ca.caKey)
	if err != nil {
		s.t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	cert := &storage.Certificate{
		Serial: leaf.SerialNumber.Text(16), AccountID: o.AccountID, OrderID: o.ID,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
		ChainPEM: encodeChain([]*x509.Certificate{leaf, ca.caCert}),
		Status:   storage.StatusValid, IssuedAt: time.Now(),
	}
	o.Status, o.CertificateSerial = storage.StatusValid, cert.Serial
	if err := s.g.store.StoreCertificate(ctx, cert, o); err != nil {
		s.t.Fatal(err)
	}
	s.leaf = der
	s.certs = append(s.certs, cert.Serial)
}

func TestNegative_KeyChange(t *testing.T) {
	// rollover sends a key change by s.a to the key newKey returns, with
	// the inner JWS signed by the key signer picks and edited first.
	rollover := func(
		newKey func(s *negScene) crypto.Signer,
		signer func(s *negScene, newKey crypto.Signer) crypto.Signer,
		edit func(s *negScene, h, p map[string]any),
	) func(s *negScene) *reply {
		return func(s *negScene) *reply {
			url := s.url(pathKeyChange)
			nk := newKey(s)
			h := map[string]any{"alg": "ES256", "jwk": negJWK(nk), "url": url}
			p := map[string]any{"account": s.a.kid, "oldKey": negJWK(s.a.key)}
			if edit != nil {
				edit(s, h, p)
			}
			inner := negFlatJWS(s.t, signer(s, nk), h, marshalPayload(s.t, p))
			return s.a.post(url, inner)
		}
	}
	// freshKey is a key no account holds, nor may hold afterwards.
	freshKey := func(s *negScene) crypto.Signer {
		k := negECKey(s.t, elliptic.P256())
		s.keysWithoutAccount = append(s.keysWithoutAccount, k)
		return k
	}
	selfSigned := func(_ *negScene, nk crypto.Signer) crypto.Signer { return nk }
	runNegative(t, []negCase{{
		name:  "RejectsInnerNonce",
		setup: withAccount,
		send:  rollover(freshKey, selfSigned, func(s *negScene, h, _ map[string]any) { h["nonce"] = s.g.nonce() }),
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsInnerURLMismatch",
		setup: withAccount,
		send:  rollover(freshKey, selfSigned, func(s *negScene, h, _ map[string]any) { h["url"] = s.url(pathNewAccount) }),
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsWrongOldKey",
		setup: withAccount,
		send: rollover(freshKey, selfSigned, func(s *negScene, _, p map[string]any) {
			p["oldKey"] = negJWK(negECKey(s.t, elliptic.P256()))
		}),
		typ: "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsInnerPayloadNamingAnotherAccount",
		setup: withTwoAccounts,
		send:  rollover(freshKey, selfSigned, func(s *negScene, _, p map[string]any) { p["account"] = s.b.kid }),
		typ:   "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsNewKeyOfAnotherAccount",
		setup: withTwoAccounts,
		send:  rollover(func(s *negScene) crypto.Signer { return s.b.key }, selfSigned, nil),
		typ:   "malformed", status: http.StatusConflict,
		check: func(t *testing.T, s *negScene, r *reply, _ *Problem) {
			if loc := r.header.Get("Location"); loc != s.b.kid {
				t.Errorf("Location %q, want the other account %q", loc, s.b.kid)
			}
		},
	}, {
		name:  "RejectsInnerSignedByKeyOtherThanItsJWK",
		setup: withAccount,
		send:  rollover(freshKey, func(s *negScene, _ crypto.Signer) crypto.Signer { return freshKey(s) }, nil),
		typ:   "malformed", status: http.StatusBadRequest,
	}})
}
