package gateway

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// The negative suite's malformed and hostile JWS envelopes; see
// negative_test.go for how a case runs.

// newOrderWith posts an order by s.a with its protected header edited.
func (s *negScene) newOrderWith(edit func(h map[string]any)) *reply {
	return s.a.negSend(s.url(pathNewOrder), orderPayload, edit)
}

// sendBody posts body as a JOSE request to the new-order URL.
func (s *negScene) sendBody(body []byte) *reply {
	return s.g.send(s.url(pathNewOrder), "application/jose+json", body)
}

// validOrderJWS is a correct new-order JWS by s.a, to be taken apart.
func (s *negScene) validOrderJWS() []byte {
	return negFlatJWS(s.t, s.a.key, s.a.negHeader(s.url(pathNewOrder)), marshalPayload(s.t, orderPayload))
}

func wantAlgorithms(t *testing.T, _ *negScene, _ *reply, p *Problem) {
	if !slices.Contains(p.Algorithms, "ES256") {
		t.Errorf("badSignatureAlgorithm lists algorithms %v, want ES256 among them", p.Algorithms)
	}
}

func wantAllow(t *testing.T, _ *negScene, r *reply, _ *Problem) {
	if !strings.Contains(r.header.Get("Allow"), http.MethodPost) {
		t.Errorf("405 answer has Allow %q; RFC 9110 §15.5.6 requires it, listing POST", r.header.Get("Allow"))
	}
}

func TestNegative_JWS(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	runNegative(t, []negCase{{
		name:  "RejectsAlgNone",
		setup: withStranger,
		send: func(s *negScene) *reply {
			// An unsecured JWS (RFC 7515 §A.5) has an empty signature.
			h := s.a.negHeader(s.url(pathNewAccount))
			h["alg"] = "none"
			body := negFlatJSON(negProtected(s.t, h), b64([]byte(`{"termsOfServiceAgreed":true}`)), "")
			return s.g.send(s.url(pathNewAccount), "application/jose+json", body)
		},
		typ: "badSignatureAlgorithm", status: http.StatusBadRequest, check: wantAlgorithms,
	}, {
		name:  "RejectsAlgNoneWithASignature",
		setup: withStranger,
		send: func(s *negScene) *reply {
			return s.a.negSend(s.url(pathNewAccount), map[string]any{"termsOfServiceAgreed": true}, func(h map[string]any) { h["alg"] = "none" })
		},
		typ: "badSignatureAlgorithm", status: http.StatusBadRequest, check: wantAlgorithms,
	}, {
		name:  "RejectsHS256SignedWithSharedSecret",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.sendBody(negHMACJWS(s.t, secret, s.a.negHeader(s.url(pathNewOrder)), marshalPayload(s.t, orderPayload)))
		},
		typ: "badSignatureAlgorithm", status: http.StatusBadRequest, check: wantAlgorithms,
	}, {
		name:  "RejectsRS1",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.newOrderWith(func(h map[string]any) { h["alg"] = "RS1" }) },
		typ:   "badSignatureAlgorithm", status: http.StatusBadRequest, check: wantAlgorithms,
	}, {
		name:  "RejectsUnknownAlg",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.newOrderWith(func(h map[string]any) { h["alg"] = "XS999" }) },
		typ:   "badSignatureAlgorithm", status: http.StatusBadRequest, check: wantAlgorithms,
	}, {
		name:  "RejectsJWKAndKIDTogether",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { h["jwk"] = negJWK(s.a.key) })
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsNeitherJWKNorKID",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.newOrderWith(func(h map[string]any) { delete(h, "kid") }) },
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsJWKOnKIDOnlyResource",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { delete(h, "kid"); h["jwk"] = negJWK(s.a.key) })
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsKIDOnNewAccount",
		setup: func(s *negScene) { s.b = s.registered(); s.a = s.stranger() },
		send: func(s *negScene) *reply {
			return s.a.negSend(s.url(pathNewAccount), map[string]any{"termsOfServiceAgreed": true}, func(h map[string]any) {
				delete(h, "jwk")
				h["kid"] = s.b.kid
			})
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsKIDOfUnknownAccount",
		setup: withStranger,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { delete(h, "jwk"); h["kid"] = s.url("/account/") + NewID() })
		},
		typ: "accountDoesNotExist", status: http.StatusBadRequest,
	}, {
		name:  "RejectsKIDOfAnotherServer",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) {
				h["kid"] = "https://acme.elsewhere.example/acme/account/" + path.Base(s.a.kid)
			})
		},
		typ: "accountDoesNotExist", status: http.StatusBadRequest,
	}, {
		name:  "RejectsKIDOfAnotherAccountSignedWithOwnKey",
		setup: withTwoAccounts,
		send:  func(s *negScene) *reply { return s.newOrderWith(func(h map[string]any) { h["kid"] = s.b.kid }) },
		typ:   "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsURLOfAnotherHost",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { h["url"] = "https://acme.elsewhere.example/acme/new-order" })
		},
		typ: "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsURLOfAnotherResource",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { h["url"] = s.url(pathNewAccount) })
		},
		typ: "unauthorized", status: http.StatusForbidden,
	}, {
		name:  "RejectsMissingNonce",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.newOrderWith(func(h map[string]any) { delete(h, "nonce") }) },
		typ:   "badNonce", status: http.StatusBadRequest,
	}, {
		name:  "RejectsReplayedNonce",
		setup: withAccount,
		send: func(s *negScene) *reply {
			nonce := s.g.nonce()
			useNonce := func(h map[string]any) { h["nonce"] = nonce }
			if r := s.a.negSend(s.a.kid, nil, useNonce); r.status != http.StatusOK {
				s.t.Fatalf("first use of the nonce: %d %s", r.status, r.body)
			}
			return s.newOrderWith(useNonce)
		},
		typ: "badNonce", status: http.StatusBadRequest,
	}, {
		name:  "RejectsWellFormedNonceNotIssuedHere",
		setup: withAccount,
		send: func(s *negScene) *reply {
			forged := make([]byte, nonceLen)
			_, _ = rand.Read(forged)
			return s.newOrderWith(func(h map[string]any) { h["nonce"] = b64(forged) })
		},
		typ: "badNonce", status: http.StatusBadRequest,
	}, {
		name:  "RejectsNonceOfAnotherGateway",
		setup: withAccount,
		send: func(s *negScene) *reply {
			other := newGateway(s.t).nonce()
			return s.newOrderWith(func(h map[string]any) { h["nonce"] = other })
		},
		typ: "badNonce", status: http.StatusBadRequest,
	}, {
		name:  "RejectsGarbageNonce",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { h["nonce"] = "not a nonce!" })
		},
		typ: "badNonce", status: http.StatusBadRequest,
	}, {
		name:  "RejectsOversizedBody",
		setup: withAccount,
		send: func(s *negScene) *reply {
			big := map[string]any{"identifiers": negDNSIDs("x.example.com"), "padding": strings.Repeat("x", maxJWSBody)}
			return s.a.negSend(s.url(pathNewOrder), big, nil)
		},
		typ: "malformed", status: http.StatusRequestEntityTooLarge,
	}, {
		name:  "RejectsWrongContentType",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.g.send(s.url(pathNewOrder), "application/json", s.validOrderJWS()) },
		typ:   "malformed", status: http.StatusUnsupportedMediaType,
	}, {
		name:  "RejectsGETOnNewOrder",
		setup: withAccount,
		send:  func(s *negScene) *reply { return s.g.negGet(s.url(pathNewOrder)) },
		typ:   "malformed", status: http.StatusMethodNotAllowed, check: wantAllow,
	}, {
		name:  "RejectsGETOnOrder",
		setup: func(s *negScene) { withAccount(s); s.pendingOrder(s.a, "get.example.com") },
		send:  func(s *negScene) *reply { return s.g.negGet(s.orderURL) },
		typ:   "malformed", status: http.StatusMethodNotAllowed, check: wantAllow,
	}, {
		name:  "RejectsCompactSerialization",
		setup: withAccount,
		send: func(s *negScene) *reply {
			p, pl, sig := negSplitJWS(s.t, s.validOrderJWS())
			return s.sendBody([]byte(p + "." + pl + "." + sig))
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsGeneralSerialization",
		setup: withAccount,
		send: func(s *negScene) *reply {
			p, pl, sig := negSplitJWS(s.t, s.validOrderJWS())
			body, _ := json.Marshal(map[string]any{
				"payload":    pl,
				"signatures": []map[string]string{{"protected": p, "signature": sig}},
			})
			return s.sendBody(body)
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsUnprotectedHeader",
		setup: withAccount,
		send: func(s *negScene) *reply {
			p, pl, sig := negSplitJWS(s.t, s.validOrderJWS())
			body, _ := json.Marshal(map[string]any{
				"protected": p, "payload": pl, "signature": sig,
				"header": map[string]string{"kid": s.a.kid},
			})
			return s.sendBody(body)
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsProtectedHeaderNotBase64url",
		setup: withAccount,
		send: func(s *negScene) *reply {
			_, pl, sig := negSplitJWS(s.t, s.validOrderJWS())
			return s.sendBody(negFlatJSON("eyJ!!!not*base64", pl, sig))
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsSignatureNotBase64url",
		setup: withAccount,
		send: func(s *negScene) *reply {
			p, pl, _ := negSplitJWS(s.t, s.validOrderJWS())
			return s.sendBody(negFlatJSON(p, pl, "!!!"))
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsPayloadSwappedUnderTheSignature",
		setup: withAccount,
		send: func(s *negScene) *reply {
			p, _, sig := negSplitJWS(s.t, s.validOrderJWS())
			other := marshalPayload(s.t, map[string]any{"identifiers": negDNSIDs("y.example.com")})
			return s.sendBody(negFlatJSON(p, b64(other), sig))
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsCritHeader",
		setup: withAccount,
		send: func(s *negScene) *reply {
			return s.newOrderWith(func(h map[string]any) { h["crit"] = []string{"b64"}; h["b64"] = false })
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name: "RejectsSignatureByKeyOtherThanJWK",
		setup: func(s *negScene) {
			s.a, s.b = s.stranger(), s.stranger()
		},
		send: func(s *negScene) *reply {
			return s.a.negSend(s.url(pathNewAccount), map[string]any{"termsOfServiceAgreed": true}, func(h map[string]any) {
				h["jwk"] = negJWK(s.b.key)
			})
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsPrivateJWK",
		setup: withStranger,
		send: func(s *negScene) *reply {
			return s.a.negSend(s.url(pathNewAccount), map[string]any{"termsOfServiceAgreed": true}, func(h map[string]any) {
				h["jwk"] = jose.JSONWebKey{Key: s.a.key} // the private key itself
			})
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name:  "RejectsPayloadNotJSON",
		setup: withStranger,
		send: func(s *negScene) *reply {
			return s.a.negSend(s.url(pathNewAccount), []byte("termsOfServiceAgreed=yes"), nil)
		},
		typ: "malformed", status: http.StatusBadRequest,
	}, {
		name: "RejectsRSA1024AccountKey",
		send: func(s *negScene) *reply {
			key := negRSAKey(s.t, 1024)
			s.keysWithoutAccount = append(s.keysWithoutAccount, key)
			h := map[string]any{"alg": "RS256", "nonce": s.g.nonce(), "url": s.url(pathNewAccount), "jwk": negJWK(key)}
			body := negFlatJWS(s.t, key, h, []byte(`{"termsOfServiceAgreed":true}`))
			return s.g.send(s.url(pathNewAccount), "application/jose+json", body)
		},
		typ: "badPublicKey", status: http.StatusBadRequest,
	}})
}
