package caddyacmegw

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/cm"
	"github.com/caddyacmegw/caddyacmegw/gateway"
)

func init() {
	caddy.RegisterModule(CMIssuer{})
}

// CMIssuer issues through Smart ID Certificate Manager (CM): the client's
// CSR goes to CM's REST API, as Protocol Gateway (PGWY) serves it, at the
// endpoint of a token procedure, so that CM's formats, publishing and OCSP
// apply to ACME certificates too. Write operations are signed by an
// officer when PGWY asks. Revocations go to CM and count only once CM
// confirmed them.
type CMIssuer struct {
	// Procedures are the token procedures certificates are issued
	// through, each with the base URL of the PGWY endpoint that serves it
	// (e.g. https://cm.example.com:8443/pgwy/api). A pre-registration may
	// name one. Required.
	Procedures []CMProcedure `json:"procedures,omitempty"`

	// DefaultProcedure is the procedure of orders whose account's
	// registration names none. Default: the first of Procedures.
	DefaultProcedure string `json:"default_procedure,omitempty"`

	// ClientCertificate and ClientKey are PEM files of the officer
	// certificate and its unencrypted key, for mutual TLS.
	ClientCertificate string `json:"client_certificate,omitempty"`
	ClientKey         string `json:"client_key,omitempty"`

	// Signing is how PGWY's writes are signed, as PGWY is configured:
	// "caller", where PGWY answers with data to sign and the gateway signs
	// it with the signer's key (PGWY's default), or "server", where PGWY
	// signs itself (a virtual registration officer). Default: "caller".
	Signing string `json:"signing,omitempty"`

	// SignerCertificate and SignerKey are PEM files of the officer whose
	// key signs writes in "caller" mode (the certificate file may hold its
	// chain). Default: ClientCertificate and ClientKey.
	SignerCertificate string `json:"signer_certificate,omitempty"`
	SignerKey         string `json:"signer_key,omitempty"`

	// Chain is a PEM file of the CA certificates that issued certificates
	// chain to (intermediates, optionally the root); the chain clients
	// receive is built from it, and every issued certificate must chain
	// to it. Required unless CM's answers carry the chain.
	Chain string `json:"chain,omitempty"`

	// TrustedRoots is a PEM file of the roots CM's server certificate must
	// chain to.
	TrustedRoots string `json:"trusted_roots,omitempty"`

	// Timeout bounds every call to CM. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// PendingDeadline is how long an order may wait for CM while CM
	// cannot be reached before it fails. Default: 24h.
	PendingDeadline caddy.Duration `json:"pending_deadline,omitempty"`

	client *cm.Client
	logger *zap.Logger
}

// CMProcedure is one token procedure and its PGWY endpoint.
type CMProcedure struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// cmRetryAfter is how long a client is asked to wait while the outcome at
// CM is not known yet.
const cmRetryAfter = 5 * time.Second

// lostAnswerRef is the IssuerRef prefix of an order whose issue request
// may have been carried out by CM while its answer was lost; the time the
// request was sent follows.
const lostAnswerRef = "cm-lost-answer:"

// CaddyModule returns the Caddy module information.
func (CMIssuer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "acme_gateway.issuers.cm",
		New: func() caddy.Module { return new(CMIssuer) },
	}
}

// Provision loads the officer credentials, the signer, the chain and
// CM's roots.
func (ci *CMIssuer) Provision(ctx caddy.Context) error {
	ci.logger = ctx.Logger()
	if ci.PendingDeadline == 0 {
		ci.PendingDeadline = caddy.Duration(24 * time.Hour)
	}
	if ci.Timeout == 0 {
		ci.Timeout = caddy.Duration(30 * time.Second)
	}
	procs := make([]cm.Procedure, 0, len(ci.Procedures))
	for _, p := range ci.Procedures {
		if p.Name == ci.DefaultProcedure {
			procs = append([]cm.Procedure{{Name: p.Name, URL: p.URL}}, procs...)
		} else {
			procs = append(procs, cm.Procedure{Name: p.Name, URL: p.URL})
		}
	}
	if ci.DefaultProcedure != "" && (len(procs) == 0 || procs[0].Name != ci.DefaultProcedure) {
		return fmt.Errorf("cm issuer: default_procedure %q is not one of the procedures", ci.DefaultProcedure)
	}
	client, err := cm.New(cm.Config{
		Procedures:     procs,
		CertFile:       ci.ClientCertificate,
		KeyFile:        ci.ClientKey,
		Signing:        cm.Signing(ci.Signing),
		SignerCertFile: ci.SignerCertificate,
		SignerKeyFile:  ci.SignerKey,
		ChainFile:      ci.Chain,
		RootsFile:      ci.TrustedRoots,
		Timeout:        time.Duration(ci.Timeout),
	})
	if err != nil {
		return fmt.Errorf("cm issuer: %w", err)
	}
	ci.client = client
	return nil
}

// Validate checks the configuration.
func (ci *CMIssuer) Validate() error {
	if (ci.SignerCertificate == "") != (ci.SignerKey == "") {
		return errors.New("cm issuer: signer needs both a certificate and a key file")
	}
	if ci.Signing == string(cm.SigningServer) && ci.SignerCertificate != "" {
		return errors.New("cm issuer: a signer is used only with signing caller")
	}
	return nil
}

// Cleanup closes idle connections to CM.
func (ci *CMIssuer) Cleanup() error {
	if ci.client != nil {
		ci.client.Close()
	}
	return nil
}

// Describe names CM's procedure endpoints and the signing mode, for the
// log at start.
func (ci *CMIssuer) Describe() string {
	var procs []string
	for _, p := range ci.Procedures {
		procs = append(procs, fmt.Sprintf("%q at %s", p.Name, p.URL))
	}
	signing := ci.Signing
	if signing == "" {
		signing = string(cm.SigningCaller)
	}
	return fmt.Sprintf("Certificate Manager, procedures %s, signing %s", strings.Join(procs, ", "), signing)
}

// MaxLifetime implements Issuer: CM's REST API takes no validity, the
// token procedure sets it, so an order may not ask for one.
func (ci *CMIssuer) MaxLifetime() time.Duration { return 0 }

// ProcedureNames implements procedureIssuer.
func (ci *CMIssuer) ProcedureNames() []string { return ci.client.Procedures() }

// CheckProfile implements profileChecker: under issuer cm a profile is
// one of the procedure endpoints, whose token procedure sets validity and
// usages.
func (ci *CMIssuer) CheckProfile(p gateway.Profile) error {
	if p.Lifetime != 0 || p.KeyUsage != 0 || len(p.ExtKeyUsage) > 0 {
		return errors.New("lifetime and key usages cannot be set with issuer cm: CM's token procedure sets them; name one with procedure")
	}
	if p.Procedure != "" && !slices.Contains(ci.ProcedureNames(), p.Procedure) {
		return fmt.Errorf("procedure %q is not one of the cm issuer's: %s", p.Procedure, strings.Join(ci.ProcedureNames(), ", "))
	}
	return nil
}

// RefusesEmail implements emailRefuser.
func (ci *CMIssuer) RefusesEmail() string {
	return "Certificate Manager's REST API takes only the client's CSR: it has no field for an e-mail address to add"
}

// MaxPending implements gateway.PendingDeadliner.
func (ci *CMIssuer) MaxPending() time.Duration { return time.Duration(ci.PendingDeadline) }

// lostAnswerSearch is how long after an issue request whose answer was
// lost CM is searched for its certificate before the order fails: CM may
// still be working on a request that outlasted the timeout.
func (ci *CMIssuer) lostAnswerSearch() time.Duration { return 3 * time.Duration(ci.Timeout) }

// Issue implements Issuer. When CM cannot be reached before the request
// was sent, issuance is pending without a reference and is tried again
// from the stored CSR. When the request that CM carries out may have
// reached it and its answer was lost, it is never sent again: the order
// waits while Resume searches CM for the certificate.
func (ci *CMIssuer) Issue(ctx context.Context, req *gateway.IssueRequest) ([]*x509.Certificate, error) {
	sent := time.Now()
	res, err := ci.client.Issue(ctx, req.CSR.Raw, req.Procedure)
	var ce *cm.Error
	if errors.As(err, &ce) && ce.Ambiguous {
		return nil, &gateway.PendingError{Ref: lostAnswerRef + sent.UTC().Format(time.RFC3339Nano), RetryAfter: cmRetryAfter}
	}
	if err != nil {
		return nil, cmIssueError(err)
	}
	if res.UnsignedWrite {
		ci.logger.Warn("CM issued on a request sent without a signature: its PGWY handler signs itself (VRO); set `signing server`, "+
			"since with `signing caller` a first request that fails after it was sent is sent again", zap.String("order", req.OrderID))
	}
	return res.Chain, nil
}

// Resume implements Resumer: it searches CM for the certificate of a
// request whose answer was lost (ref), or that a process which stopped
// may have sent (no ref; since is when the order was stored processing).
// What it finds is delivered; when nothing is found once the search window
// has passed, the order fails.
func (ci *CMIssuer) Resume(ctx context.Context, req *gateway.IssueRequest, ref string, since time.Time) ([]*x509.Certificate, error) {
	if ref == "" {
		// From now on this order is looked for like a lost answer sent
		// at since, a window long past: the first search decides.
		ref = lostAnswerRef + since.UTC().Format(time.RFC3339Nano)
	}
	sent, ok := cutTime(ref, lostAnswerRef)
	if !ok {
		return nil, fmt.Errorf("cm issuer: unknown issuer reference %q", ref)
	}
	res, err := ci.client.FindIssued(ctx, req.CSR, req.Procedure, sent)
	switch {
	case err == nil:
		return res.Chain, nil
	case cm.Classify(err) == cm.KindNotFound && !time.Now().Before(sent.Add(ci.lostAnswerSearch())):
		return nil, &gateway.IssueError{Kind: gateway.ProblemServerInternal,
			Detail: "the CA's answer to the issue request was lost, and the CA holds no certificate for it; place a new order"}
	case cm.Classify(err) == cm.KindNotFound, !cm.IsFinal(err):
		return nil, &gateway.PendingError{Ref: ref, RetryAfter: cmRetryAfter}
	}
	// The search itself is refused (a role, a protocol error): CM may
	// still hold the certificate, so the order waits, up to
	// pending_deadline, for the search to work again.
	ci.logger.Error("searching CM for a lost answer", zap.String("order", req.OrderID), zap.Error(err))
	return nil, &gateway.PendingError{Ref: ref, RetryAfter: cmRetryAfter}
}

// cutTime reads the time after prefix in ref.
func cutTime(ref, prefix string) (time.Time, bool) {
	s, ok := strings.CutPrefix(ref, prefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// Revoke implements Issuer: nil only when CM confirmed the revocation.
func (ci *CMIssuer) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	return ci.client.Revoke(ctx, cert.SerialNumber, reason)
}

// cmIssueError maps a CM failure to what the gateway does with the order.
func cmIssueError(err error) error {
	switch cm.Classify(err) {
	case cm.KindCSR:
		return &gateway.IssueError{Kind: gateway.ProblemBadCSR, Detail: "the CA refused the CSR" + cmMessage(err)}
	case cm.KindName:
		return &gateway.IssueError{Kind: gateway.ProblemRejectedIdentifier, Detail: "the CA refused a name" + cmMessage(err)}
	case cm.KindTransient:
		return &gateway.PendingError{RetryAfter: cmRetryAfter}
	}
	return err // config and other refusals: logged, the client sees serverInternal
}

// cmMessage is CM's own message, already bounded by the client.
func cmMessage(err error) string {
	var ce *cm.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ": " + ce.Message
	}
	return ""
}

// UnmarshalCaddyfile sets up the CM issuer:
//
//	issuer cm {
//		procedure           <name> <url>
//		default_procedure   <name>
//		client_certificate  <cert.pem> <key.pem>
//		signing             caller|server
//		signer              <cert.pem> <key.pem>
//		chain               <ca-chain.pem>
//		trusted_roots       <roots.pem>
//		timeout             <duration>
//		pending_deadline    <duration>
//	}
//
// procedure may be given several times; the first is the default unless
// default_procedure names another.
func (ci *CMIssuer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "procedure":
			var p CMProcedure
			if !d.AllArgs(&p.Name, &p.URL) {
				return d.Errf("procedure takes a name and the URL of its PGWY endpoint: procedure <name> <url>")
			}
			ci.Procedures = append(ci.Procedures, p)
		case "default_procedure":
			err = oneArg(d, &ci.DefaultProcedure)
		case "url":
			return d.Errf("url: name each token procedure with its endpoint instead: procedure <name> <url>")
		case "max_validity":
			return d.Errf("max_validity: CM's token procedure sets the validity; orders cannot ask for one")
		case "client_certificate":
			if !d.AllArgs(&ci.ClientCertificate, &ci.ClientKey) {
				err = d.ArgErr()
			}
		case "signing":
			err = oneArg(d, &ci.Signing)
			if err == nil && ci.Signing != string(cm.SigningCaller) && ci.Signing != string(cm.SigningServer) {
				err = d.Errf("signing must be %q or %q, not %q", cm.SigningCaller, cm.SigningServer, ci.Signing)
			}
		case "signer":
			if !d.AllArgs(&ci.SignerCertificate, &ci.SignerKey) {
				err = d.ArgErr()
			}
		case "chain":
			err = oneArg(d, &ci.Chain)
		case "trusted_roots":
			err = oneArg(d, &ci.TrustedRoots)
		case "timeout":
			err = durationArg(d, &ci.Timeout)
		case "pending_deadline":
			err = durationArg(d, &ci.PendingDeadline)
		default:
			return d.Errf("unrecognized cm issuer option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*CMIssuer)(nil)
	_ caddy.Validator       = (*CMIssuer)(nil)
	_ caddy.CleanerUpper    = (*CMIssuer)(nil)
	_ gateway.Issuer        = (*CMIssuer)(nil)
	_ gateway.Resumer       = (*CMIssuer)(nil)
	_ procedureIssuer       = (*CMIssuer)(nil)
	_ emailRefuser          = (*CMIssuer)(nil)
	_ profileChecker        = (*CMIssuer)(nil)
	_ caddyfile.Unmarshaler = (*CMIssuer)(nil)
)
