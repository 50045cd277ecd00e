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
	"strconv"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		s.t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	cert := &storage.Certificate{
		Serial: leaf.SerialNumber.Text(16), AccountID: o.AccountID, OrderID: o.ID,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
		ChainPEM: encodeChain([]*x509.Certificate{leaf, ca.Cert}),
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
