package loadgen

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"

	"github.com/caddyacmegw/caddyacmegw/internal/testsrv"
)

// fakeCA is an ACME server for the worker's tests. It checks no
// signature, but answers as RFC 8555 lets a server answer, as its options
// say, and looks for a challenge's response where a real server would: in
// the DNS server's TXT records or on the http-01 responder. It logs every
// issuance request by kind, for tests to see which requests a client made
// in which order.
type fakeCA struct {
	srv    *httptest.Server
	dns    *testsrv.ZoneDNS
	http01 *testsrv.HTTP01

	// authzValid makes new authorizations valid already, as a server
	// does that reuses earlier ones.
	authzValid bool
	// deferValidation answers a challenge "processing": the outcome
	// comes with the next fetch of its authorization. Otherwise the
	// answer carries it.
	deferValidation bool
	// rejectResponse fails every validation, as if the response were
	// wrong.
	rejectResponse bool
	// deferIssuance answers a finalization "processing": the
	// certificate comes with the next fetch of the order.
	deferIssuance bool

	mu     sync.Mutex
	nonce  int
	orders []*fakeOrder
	log    []string
}

// fakeOrder is an order of one name and its one authorization.
type fakeOrder struct {
	name, token string
	status      string // the order's
	authz       string // the authorization's
	// The challenge answered, once answered.
	chalType   string
	chalStatus string
	chalError  *acme.Problem
}

// startFakeCA starts ca's server, with its directory at
// ca.srv.URL+"/directory".
func startFakeCA(t *testing.T, ca *fakeCA) *fakeCA {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /directory", ca.directory)
	mux.HandleFunc("HEAD /new-nonce", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /new-account", ca.newAccount)
	mux.HandleFunc("POST /new-order", ca.newOrder)
	mux.HandleFunc("POST /authz/{id}", ca.onOrder("authz", ca.authorization))
	mux.HandleFunc("POST /challenge/{id}/{type}", ca.onOrder("challenge", ca.challenge))
	mux.HandleFunc("POST /finalize/{id}", ca.onOrder("finalize", ca.finalize))
	mux.HandleFunc("POST /order/{id}", ca.onOrder("order", ca.orderObject))
	mux.HandleFunc("POST /certificate/{id}", ca.onOrder("certificate", ca.certificate))
	ca.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ca.mu.Lock()
		ca.nonce++
		w.Header().Set("Replay-Nonce", "n"+strconv.Itoa(ca.nonce))
		ca.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ca.srv.Close)
	return ca
}

// requests is the log: "new-order", "authz", "challenge", "finalize",
// "order" or "certificate" for each issuance request.
func (ca *fakeCA) requests() []string {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return slices.Clone(ca.log)
}

func (ca *fakeCA) url(kind string, id int) string {
	return ca.srv.URL + "/" + kind + "/" + strconv.Itoa(id)
}

func (ca *fakeCA) directory(w http.ResponseWriter, _ *http.Request) {
	base := ca.srv.URL
	writeJSON(w, http.StatusOK, map[string]string{
		"newNonce":   base + "/new-nonce",
		"newAccount": base + "/new-account",
		"newOrder":   base + "/new-order",
		"revokeCert": base + "/revoke-cert",
		"keyChange":  base + "/key-change",
	})
}

func (ca *fakeCA) newAccount(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Location", ca.srv.URL+"/account/1")
	writeJSON(w, http.StatusCreated, map[string]string{"status": acme.StatusValid})
}

func (ca *fakeCA) newOrder(w http.ResponseWriter, r *http.Request) {
	var req acme.Order
	if err := jwsPayload(r, &req); err != nil || len(req.Identifiers) != 1 {
		writeProblem(w, acme.ProblemTypeMalformed, "want one identifier")
		return
	}
	o := &fakeOrder{name: req.Identifiers[0].Value, token: rand.Text(), status: acme.StatusPending, authz: acme.StatusPending}
	if ca.authzValid {
		o.status, o.authz = acme.StatusReady, acme.StatusValid
		o.chalType, o.chalStatus = acme.ChallengeTypeDNS01, acme.StatusValid
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.orders = append(ca.orders, o)
	id := len(ca.orders) - 1
	ca.log = append(ca.log, "new-order")
	w.Header().Set("Location", ca.url("order", id))
	writeJSON(w, http.StatusCreated, ca.orderJSON(o, id))
}

// onOrder serves a request on one of an order's resources: it logs the
// request as kind and hands h the order, under ca.mu.
func (ca *fakeCA) onOrder(kind string, h func(http.ResponseWriter, *http.Request, *fakeOrder, int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		ca.mu.Lock()
		defer ca.mu.Unlock()
		if err != nil || id < 0 || id >= len(ca.orders) {
			http.NotFound(w, r)
			return
		}
		ca.log = append(ca.log, kind)
		h(w, r, ca.orders[id], id)
	}
}

func (ca *fakeCA) authorization(w http.ResponseWriter, _ *http.Request, o *fakeOrder, id int) {
	if o.chalStatus == acme.StatusProcessing {
		ca.validate(o)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":     o.authz,
		"identifier": acme.Identifier{Type: "dns", Value: o.name},
		"challenges": []any{ca.challengeJSON(o, id, acme.ChallengeTypeDNS01), ca.challengeJSON(o, id, acme.ChallengeTypeHTTP01)},
	})
}

// challenge starts the validation of the challenge of the type in the
// path and answers with its outcome, unless deferred.
func (ca *fakeCA) challenge(w http.ResponseWriter, r *http.Request, o *fakeOrder, id int) {
	typ := r.PathValue("type")
	if o.chalType == "" {
		o.chalType, o.chalStatus = typ, acme.StatusProcessing
		if !ca.deferValidation {
			ca.validate(o)
		}
	}
	w.Header().Add("Link", "<"+ca.url("authz", id)+`>;rel="up"`)
	writeJSON(w, http.StatusOK, ca.challengeJSON(o, id, typ))
}

func (ca *fakeCA) challengeJSON(o *fakeOrder, id int, typ string) map[string]any {
	c := map[string]any{"type": typ, "url": ca.url("challenge", id) + "/" + typ, "token": o.token, "status": acme.StatusPending}
	if typ == o.chalType {
		c["status"] = o.chalStatus
		if o.chalError != nil {
			c["error"] = o.chalError
		}
	}
	return c
}

// validate looks for the response to o's challenge and settles the
// challenge, the authorization and the order by what it finds.
func (ca *fakeCA) validate(o *fakeOrder) {
	if ca.rejectResponse || !ca.presented(o) {
		o.chalStatus, o.authz, o.status = acme.StatusInvalid, acme.StatusInvalid, acme.StatusInvalid
		o.chalError = &acme.Problem{Type: acme.ProblemTypeIncorrectResponse, Status: http.StatusForbidden, Detail: "no response to the " + o.chalType + " challenge of " + o.name}
		return
	}
	o.chalStatus, o.authz, o.status = acme.StatusValid, acme.StatusValid, acme.StatusReady
}

// presented reports whether the response to o's challenge is where the
// challenge's type says.
func (ca *fakeCA) presented(o *fakeOrder) bool {
	if o.chalType == acme.ChallengeTypeHTTP01 {
		resp, err := http.Get("http://" + ca.http01.Addr() + "/.well-known/acme-challenge/" + o.token)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), o.token+".")
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("_acme-challenge."+o.name), dns.TypeTXT)
	r, err := dns.Exchange(m, ca.dns.Addr())
	return err == nil && len(r.Answer) > 0
}

func (ca *fakeCA) finalize(w http.ResponseWriter, r *http.Request, o *fakeOrder, id int) {
	if o.status != acme.StatusReady {
		writeProblem(w, acme.ProblemTypeOrderNotReady, "order is "+o.status)
		return
	}
	csr, err := csrOf(r)
	if err != nil || !slices.Equal(csr.DNSNames, []string{o.name}) {
		writeProblem(w, acme.ProblemTypeBadCSR, "want a signed CSR for "+o.name)
		return
	}
	o.status = acme.StatusValid
	if ca.deferIssuance {
		o.status = acme.StatusProcessing
	}
	writeJSON(w, http.StatusOK, ca.orderJSON(o, id))
}

func (ca *fakeCA) orderObject(w http.ResponseWriter, _ *http.Request, o *fakeOrder, id int) {
	if o.status == acme.StatusProcessing {
		o.status = acme.StatusValid
	}
	writeJSON(w, http.StatusOK, ca.orderJSON(o, id))
}

func (ca *fakeCA) orderJSON(o *fakeOrder, id int) acme.Order {
	order := acme.Order{
		Status:         o.status,
		Identifiers:    []acme.Identifier{{Type: "dns", Value: o.name}},
		Authorizations: []string{ca.url("authz", id)},
		Finalize:       ca.url("finalize", id),
	}
	if o.status == acme.StatusValid {
		order.Certificate = ca.url("certificate", id)
	}
	return order
}

// certificate serves a stand-in chain: the worker does not parse it.
func (ca *fakeCA) certificate(w http.ResponseWriter, r *http.Request, o *fakeOrder, _ int) {
	if o.status != acme.StatusValid {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: []byte(o.name)})
}

// csrOf is the CSR of the finalization request r, its signature checked.
func csrOf(r *http.Request) (*x509.CertificateRequest, error) {
	var req struct{ CSR string }
	if err := jwsPayload(r, &req); err != nil {
		return nil, err
	}
	der, err := base64.RawURLEncoding.DecodeString(req.CSR)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	return csr, csr.CheckSignature()
}

// jwsPayload decodes the payload of the flattened JWS in r's body into v,
// unless it is empty (POST-as-GET). It checks no signature.
func jwsPayload(r *http.Request, v any) error {
	var jws struct{ Payload string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&jws); err != nil {
		return err
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil || len(payload) == 0 {
		return err
	}
	return json.Unmarshal(payload, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(acme.Problem{Type: typ, Status: http.StatusBadRequest, Detail: detail})
}
