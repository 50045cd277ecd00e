package gateway

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// retryFromCSR is the IssuerRef of an order the issuer asked to be tried
// again from its CSR (a transient outage, when retrying cannot issue twice).
const retryFromCSR = "retry-from-csr"

// staleProcessing is how long an order may sit in processing, with no
// request pending at the CA, before another request takes it over: the
// process that started it is presumed gone. issueTimeout, well below it,
// bounds the issuer call, so that a slow CA cannot make a live request
// look stale and be issued twice.
const (
	staleProcessing = 2 * time.Minute
	issueTimeout    = time.Minute
)

// finalize serves RFC 8555 §7.4. With an issuer that keeps records (CM) the
// order moves ready → processing by compare-and-swap, so of racing requests
// exactly one asks the CA. With the local CA racing requests may each sign,
// and the compare-and-swap that stores the outcome lets exactly one
// certificate be stored and delivered.
func (h *Server) finalize(w http.ResponseWriter, r *http.Request) (*response, error) {
	id := r.PathValue("id")
	req, err := h.readSigned(r, w, h.resourceURL(r, pathOrderFinalize, id), byKID)
	if err != nil {
		return nil, err
	}
	var p struct {
		CSR string `json:"csr"`
	}
	if err := decodePayload(req.payload, &p); err != nil {
		return nil, err
	}
	ctx := r.Context()
	order, statuses, err := h.loadOrder(ctx, req.account, id)
	if err != nil {
		return nil, err
	}
	reg, err := h.mayIssue(ctx, req.account, order)
	if err != nil {
		return nil, err
	}
	now := h.now().UTC()
	if st := orderStatus(order, statuses, now); st != storage.StatusReady {
		return nil, problem(ProblemOrderNotReady, "order is %s, not ready", st)
	}
	der, err := base64.RawURLEncoding.DecodeString(p.CSR)
	if err != nil {
		return nil, badCSR("csr is not base64url")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, badCSR("csr cannot be parsed: %v", err)
	}
	if err := checkCSR(csr, order, req.account); err != nil {
		return nil, err
	}
	if err := h.recheckCAA(r, req.account, order); err != nil {
		return nil, err
	}
	giveBack, err := h.takeCertificate(ctx, req.account, reg)
	if err != nil {
		return nil, err
	}
	orderProcessing(order, der, now)
	ctx = detach(ctx)
	// An issuer that keeps no record needs no processing order stored
	// first: its outcome is stored over the ready order in one write,
	// which only one of racing requests can win.
	_, atOnce := h.issuer.(RecordlessIssuer)
	if !atOnce {
		if err := h.store.UpdateOrder(ctx, order); err != nil {
			giveBack()
			return nil, finalizeRace(err)
		}
	}
	ireq := h.issueRequest(order, csr, req.account, reg)
	chain, err := h.callIssuer(ctx, func(ctx context.Context) ([]*x509.Certificate, error) {
		return h.issuer.Issue(ctx, ireq)
	})
	if pending := (*PendingError)(nil); err != nil && !errors.As(err, &pending) {
		giveBack() // the CA issued nothing
	}
	order, err = h.completeIssuance(ctx, order, chain, err)
	if err != nil {
		if atOnce {
			return nil, finalizeRace(err)
		}
		return nil, err
	}
	return h.orderResponse(r, order, statuses, h.replacesCertID(ctx, order), http.StatusOK), nil
}

// finalizeRace is the problem for a failed write of a finalized order:
// orderNotReady when another request finalized it first.
func finalizeRace(err error) error {
	if errors.Is(err, storage.ErrConflict) {
		return problem(ProblemOrderNotReady, "order is being finalized by another request")
	}
	return err
}

// mayIssue returns the account's registration when it and the name policy
// still allow the order's names and profile, and the order still claims
// the certificate it replaces: they may have changed since
// the order was made, so finalize and every later attempt to issue ask
// again.
func (h *Server) mayIssue(ctx context.Context, acct *storage.Account, o *storage.Order) (*storage.Registration, error) {
	reg, err := h.accountRegistration(ctx, acct)
	if err != nil {
		return nil, err
	}
	if err := h.policyFor(reg).check(o.Identifiers); err != nil {
		return reg, err
	}
	if err := h.checkClaim(ctx, o); err != nil {
		return reg, err
	}
	return reg, h.checkOrderProfile(o, reg)
}

// issueRequest is the issue request of order o for csr, at finalize and
// when a processing order is resumed alike: with what the account and its
// registration add (addAccountDetails) and then the order's profile
// (addProfile), whose procedure wins over the registration's.
func (h *Server) issueRequest(o *storage.Order, csr *x509.CertificateRequest, acct *storage.Account, reg *storage.Registration) *IssueRequest {
	names, ips := orderNames(o.Identifiers)
	req := &IssueRequest{
		CSR: csr, Names: names, IPAddresses: ips,
		NotBefore: o.NotBefore, NotAfter: o.NotAfter,
		AccountID: o.AccountID, OrderID: o.ID,
	}
	h.addAccountDetails(req, acct, reg)
	h.addProfile(req, o)
	return req
}

// addAccountDetails adds to an issue request what the configuration takes
// from the account: its first contact e-mail that is one of its
// registration's (a contact alone is only what the client says of itself,
// so an account without a registration gets none), and its registration's
// procedure.
func (h *Server) addAccountDetails(req *IssueRequest, acct *storage.Account, reg *storage.Registration) {
	if reg == nil {
		return
	}
	if h.cfg.AddAccountContactEmail {
		for _, c := range acct.Contact {
			if addr, ok := strings.CutPrefix(c, "mailto:"); ok && slices.Contains(reg.Emails, addr) {
				req.Email = addr
				break
			}
		}
	}
	req.Procedure = reg.Procedure
}

// callIssuer runs one issuer call within issueTimeout.
func (h *Server) callIssuer(ctx context.Context, call func(context.Context) ([]*x509.Certificate, error)) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, issueTimeout)
	defer cancel()
	start := h.now()
	chain, err := call(ctx)
	h.metrics.IssuerCall(issuerOutcome(err), h.now().Sub(start))
	return chain, err
}

// completeIssuance records what the issuer answered for a processing
// order: the certificate, a pending reference, or the failure. It returns
// the order as stored: on error, the order as it was.
func (h *Server) completeIssuance(ctx context.Context, stored *storage.Order, chain []*x509.Certificate, issueErr error) (*storage.Order, error) {
	o := *stored // a failed write must not leave the caller a state never stored
	now := h.now().UTC()
	var pending *PendingError
	if errors.As(issueErr, &pending) && pending.Ref != "" {
		if _, ok := h.issuer.(Resumer); !ok {
			issueErr = fmt.Errorf("issuer %T answered pending (ref %q) but cannot resume", h.issuer, pending.Ref)
		}
	}
	switch {
	case errors.As(issueErr, &pending):
		o.IssuerRef = pending.Ref
		if o.IssuerRef == "" {
			o.IssuerRef = retryFromCSR
		}
		h.pending.add(o.ID)
		o.UpdatedAt = now
		return h.updateProcessing(ctx, stored, &o)
	case issueErr != nil:
		p := issueProblem(issueErr)
		if p.cause != nil {
			h.logger.Error("issuing certificate", zap.String("order", o.ID), zap.Error(issueErr))
		}
		orderFailed(&o, problemJSON(p), now)
		return h.updateProcessing(ctx, stored, &o)
	}
	if err := matchesOrder(chain, &o); err != nil {
		h.dropMismatched(ctx, &o, chain, err)
		return h.completeIssuance(ctx, stored, nil, err)
	}
	leaf := chain[0]
	cert := &storage.Certificate{
		Serial:    leaf.SerialNumber.Text(16),
		AccountID: o.AccountID,
		OrderID:   o.ID,
		Names:     certNames(leaf),
		NotBefore: leaf.NotBefore.UTC(),
		NotAfter:  leaf.NotAfter.UTC(),
		ChainPEM:  encodeChain(chain),
		Status:    storage.StatusValid,
		IssuedAt:  now,
		Profile:   o.Profile,
		Replaces:  o.Replaces,
	}
	orderIssued(&o, cert.Serial, now)
	if err := h.storeCertificate(ctx, cert, &o); err != nil {
		log := h.logger.Error
		if _, ok := h.issuer.(RecordlessIssuer); ok && errors.Is(err, storage.ErrConflict) {
			log = h.logger.Debug // another request finalized it first; this one is dropped
		}
		log("storing issued certificate", zap.String("order", o.ID), zap.String("serial", cert.Serial), zap.Error(err))
		return stored, err
	}
	h.recordReplacement(ctx, cert)
	h.metrics.Issued(h.metricsProfile(o.Profile), now.Sub(stored.UpdatedAt))
	h.logger.Info("certificate issued", zap.String("account", o.AccountID), zap.String("order", o.ID),
		zap.Strings("names", cert.Names), zap.String("serial", cert.Serial))
	return &o, nil
}

// storeBackoff is how long a write recording what the CA has done waits
// before each attempt: a failing backend is retried briefly, since the
// CA's act cannot be taken back.
var storeBackoff = []time.Duration{0, 50 * time.Millisecond, 250 * time.Millisecond, time.Second}

// sleep waits d, or less when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d == 0 {
		return ctx.Err()
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeCertificate stores a certificate the CA has issued, retrying a
// failing backend briefly: once lost, it would be issued a second time.
func (h *Server) storeCertificate(ctx context.Context, cert *storage.Certificate, o *storage.Order) error {
	var err error
	for _, backoff := range storeBackoff {
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		err = h.store.StoreCertificate(ctx, cert, o)
		if err == nil {
			return nil
		}
		if errors.Is(err, storage.ErrConflict) {
			// An attempt that reported failure may have committed.
			if got, gerr := h.store.GetCertificate(ctx, cert.Serial); gerr == nil && got.OrderID == o.ID {
				if cur, oerr := h.store.GetOrder(ctx, o.ID); oerr == nil && cur.CertificateSerial == cert.Serial {
					*o = *cur
					return nil
				}
			}
			return err
		}
	}
	return err
}

// dropMismatched logs a certificate that does not match its order and
// revokes it: the client never sees it, and it must not stay valid at the CA.
func (h *Server) dropMismatched(ctx context.Context, o *storage.Order, chain []*x509.Certificate, err error) {
	if len(chain) == 0 {
		return
	}
	h.logger.Error("issuer returned a certificate not matching the order",
		zap.String("order", o.ID), zap.String("serial", chain[0].SerialNumber.Text(16)), zap.Error(err))
	if rerr := h.issuer.Revoke(ctx, chain[0], 0); rerr != nil {
		h.logger.Error("revoking the mismatched certificate", zap.Error(rerr))
	}
}

// certNames lists a certificate's DNS names, then its addresses.
func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			names = append(names, a.Unmap().String())
		}
	}
	return names
}

// matchesOrder checks that an issued chain's leaf certifies the CSR's key
// for exactly the order's names.
func matchesOrder(chain []*x509.Certificate, o *storage.Order) error {
	if len(chain) == 0 {
		return errors.New("issuer returned an empty chain")
	}
	csr, err := x509.ParseCertificateRequest(o.CSR)
	if err != nil {
		return fmt.Errorf("order's CSR: %w", err)
	}
	leaf := chain[0]
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := leaf.PublicKey.(equaler); !ok || !k.Equal(csr.PublicKey) {
		return errors.New("issuer returned a certificate for another key")
	}
	wantNames, wantIPs := orderNames(o.Identifiers)
	var gotIPs []netip.Addr
	for _, ip := range leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			gotIPs = append(gotIPs, a.Unmap())
		}
	}
	if !slices.Equal(sortedSet(leaf.DNSNames), sortedSet(wantNames)) ||
		!slices.Equal(sortedSet(addrStrings(gotIPs)), sortedSet(addrStrings(wantIPs))) {
		return fmt.Errorf("issuer returned a certificate for %v %v, not %v", leaf.DNSNames, leaf.IPAddresses, o.Identifiers)
	}
	return nil
}

// updateProcessing writes changed, the successor of stored.
func (h *Server) updateProcessing(ctx context.Context, stored, changed *storage.Order) (*storage.Order, error) {
	if err := h.store.UpdateOrder(ctx, changed); err != nil {
		return stored, err
	}
	return changed, nil
}

// encodeChain returns the PEM chain, leaf first.
func encodeChain(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
