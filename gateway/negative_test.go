package gateway

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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

// postFirstChallenge starts the first challenge of a's order.
func postFirstChallenge(s *negScene) *reply {
	var a authzBody
	s.a.post(s.order.Authorizations[0], nil).decode(s.t, &a)
	return s.a.post(a.Challenges[0].URL, map[string]any{})
}

func TestNegative_Challenge(t *testing.T) {
	runNegative(t, []negCase{{
		name: "RejectsWithRateLimitedWhenValidationQueueIsFull",
		setup: func(s *negScene) {
			withAccount(s)
			s.pendingOrder(s.a, "queued.example.com")
			// One slot, taken, and every waiting place taken too,
			// those kept for accounts with nothing queued included.
			v := NewValidationPool(1)
			s.g.h.validating = v
			for i := range 2 * (1 + queuedPerSlot) {
				v.start("filler-"+strconv.Itoa(i), "filler", false, func(ctx context.Context) { <-ctx.Done() })
			}
		},
		send: postFirstChallenge,
		typ:  "rateLimited", status: http.StatusTooManyRequests,
		check: func(t *testing.T, _ *negScene, r *reply, _ *Problem) {
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		},
	}, {
		name: "RejectsOnlyTheAccountWithValidationsInAFullQueue",
		setup: func(s *negScene) {
			withTwoAccounts(s)
			s.pendingOrder(s.b, "other.example.com")
			s.pendingOrder(s.a, "queued.example.com")
			// The queue is full, and a has validations in it; b has none.
			v := NewValidationPool(1)
			s.g.h.validating = v
			for i := range 1 + queuedPerSlot {
				v.start("filler-"+strconv.Itoa(i), path.Base(s.a.kid), false, func(ctx context.Context) { <-ctx.Done() })
			}
		},
		send: postFirstChallenge,
		typ:  "rateLimited", status: http.StatusTooManyRequests,
		check: func(t *testing.T, s *negScene, r *reply, _ *Problem) {
			if r.header.Get("Retry-After") == "" {
				t.Error("rateLimited answer without Retry-After")
			}
			if !s.g.h.validating.reserve(path.Base(s.b.kid), s.g.h.cfg.MaxValidationsPerAccount) {
				t.Error("a full queue refused an account with nothing in it")
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
