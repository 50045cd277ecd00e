package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// challengeWait is how long a challenge request waits for its validation
// before answering "processing".
const challengeWait = 200 * time.Millisecond

// Challenge types offered.
const (
	challengeHTTP01    = "http-01"
	challengeDNS01     = "dns-01"
	challengeTLSALPN01 = "tls-alpn-01"
)

// Validator proves control of a name; validate.Validator is the
// real one. Errors are *validate.Error.
type Validator interface {
	HTTP01(ctx context.Context, domain, token, keyAuth string) error
	DNS01(ctx context.Context, domain, keyAuth string) error
	TLSALPN01(ctx context.Context, identifier, keyAuth string) error
	// CAA checks that CAA records let this CA issue for name; nil when
	// CAA checking is off.
	CAA(ctx context.Context, name string, wildcard bool, accountURI, method string) error
}

// challengeResource serves a challenge (§7.5.1): an empty payload reads it,
// a JSON object ("{}") asks for validation, which runs in the background.
func (h *Server) challengeResource(w http.ResponseWriter, r *http.Request) (*response, error) {
	authzID, typ := r.PathValue("id"), r.PathValue("type")
	req, err := h.readSigned(r, w, h.challengeURL(r, authzID, typ), byKID)
	if err != nil {
		return nil, err
	}
	a, err := h.loadAuthz(r, req, authzID)
	if err != nil {
		return nil, err
	}
	i := challengeIndex(a, typ)
	if i < 0 {
		return nil, notFound("challenge")
	}
	if req.postAsGet() {
		h.resumeValidation(r, req.account, a)
	} else {
		var obj map[string]any
		if err := decodePayload(req.payload, &obj); err != nil {
			return nil, err
		}
		if _, err := h.accountRegistration(r.Context(), req.account); err != nil {
			return nil, err
		}
		if a, err = h.startValidation(r, req.account, a, i); err != nil {
			return nil, err
		}
	}
	resp := &response{status: http.StatusOK, body: h.challengeBody(r, a, &a.Challenges[i])}
	resp.links = []string{linkHeader(h.authzURL(r, a.ID), "up")}
	if a.Challenges[i].Status == storage.StatusProcessing {
		resp.retryAfter = 1
	}
	return resp, nil
}

func challengeIndex(a *storage.Authorization, typ string) int {
	for i := range a.Challenges {
		if a.Challenges[i].Type == typ {
			return i
		}
	}
	return -1
}

// startValidation validates a pending challenge and answers with the
// outcome when it comes within challengeWait, as it nearly always does;
// only a validation that takes longer is recorded as processing, so that
// a poll after a restart queues it again. The client is told "processing"
// only once that is stored; a process that stops before then has answered
// nothing, and the challenge is still pending for the client to post again.
// A challenge left processing by a stopped process is queued again.
// Anything else, or a second challenge of an authorization whose other
// challenge is being validated, is answered as it stands.
func (h *Server) startValidation(r *http.Request, acct *storage.Account, a *storage.Authorization, i int) (*storage.Authorization, error) {
	ctx := r.Context()
	if authzStatus(a, h.now()) != storage.StatusPending {
		return a, nil
	}
	if j := processingIndex(a); j >= 0 && j != i {
		h.resumeValidation(r, acct, a) // in case its process stopped
		return a, nil
	}
	switch a.Challenges[i].Status {
	case storage.StatusPending:
		if !h.validating.reserve(acct.ID, h.cfg.MaxValidationsPerAccount) {
			p := problem(ProblemRateLimited, "too many validations of this account waiting; retry shortly")
			p.retryAfter = 2
			return nil, p
		}
	case storage.StatusProcessing:
	default:
		return a, nil
	}
	pending := a.Challenges[i].Status == storage.StatusPending
	done, stored := h.queueValidation(r, acct, a, i, pending)
	started := stored != nil
	wait := time.NewTimer(challengeWait)
	defer wait.Stop()
	select {
	case <-done:
		if started && stored() != nil {
			return stored(), nil // as the validation stored it, just now
		}
		if !started {
			return h.reloadAuthz(ctx, a.ID)
		}
		// It ended without storing an outcome (the store failed, or
		// shutdown cut it short): mark it processing, so that a poll
		// queues it again, as after a timeout.
	case <-wait.C:
	case <-ctx.Done():
	}
	if !pending || !started {
		// Already stored as processing, or another request's validation
		// of this authorization runs and records its own state.
		return a, nil
	}
	processing := challengeProcessing(a, i)
	if err := h.store.UpdateAuthz(detach(ctx), processing); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			// The outcome, or a racing request, got there first.
			return h.reloadAuthz(ctx, a.ID)
		}
		return nil, err
	}
	return processing, nil
}

// queueValidation queues the validation of challenge i, unless one runs
// for its authorization already (stored is then nil); done closes when the
// validation that runs ends. Once done is closed, stored returns the
// authorization as the validation stored it (nil if it stored nothing).
// reserved says whether the caller holds a slot from validations.reserve,
// which start takes over.
func (h *Server) queueValidation(r *http.Request, acct *storage.Account, a *storage.Authorization, i int, reserved bool) (done <-chan struct{}, stored func() *storage.Authorization) {
	c := a.Challenges[i]
	job := validationJob{
		authzID: a.ID, typ: c.Type, ident: a.Identifier, wildcard: a.Wildcard,
		token: c.Token, keyAuth: c.Token + "." + acct.KeyThumbprint,
		accountID: acct.ID, accountURI: h.accountURL(r, acct.ID),
		read: a,
	}
	var outcome *storage.Authorization
	done, started := h.validating.start(a.ID, acct.ID, reserved, func(ctx context.Context) {
		outcome = h.validateChallenge(ctx, job)
	})
	if !started {
		return done, nil
	}
	return done, func() *storage.Authorization { return outcome }
}

// resumeValidation queues again a challenge left processing by a process
// that stopped or reloaded, when a client polls it: clients post a
// challenge once and then only read.
func (h *Server) resumeValidation(r *http.Request, acct *storage.Account, a *storage.Authorization) {
	if i := processingIndex(a); i >= 0 && authzStatus(a, h.now()) == storage.StatusPending && !h.validating.running(a.ID) {
		h.queueValidation(r, acct, a, i, false)
	}
}

// processingIndex is the index of the challenge being validated, or -1.
func processingIndex(a *storage.Authorization) int {
	for i := range a.Challenges {
		if a.Challenges[i].Status == storage.StatusProcessing {
			return i
		}
	}
	return -1
}

func (h *Server) reloadAuthz(ctx context.Context, id string) (*storage.Authorization, error) {
	a, err := h.store.GetAuthz(ctx, id)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// validationJob is one challenge to validate.
type validationJob struct {
	authzID, typ   string
	ident          identifier
	wildcard       bool
	token, keyAuth string
	accountID      string
	accountURI     string
	// read is the authorization as read when the job was queued: the
	// outcome is first written over it, sparing a read when nothing
	// changed it meanwhile. Not modified.
	read *storage.Authorization
}

// attemptDelay separates the tries of a failing validation.
const attemptDelay = time.Second

// validateChallenge runs a validation, up to ValidationAttempts tries,
// then checks CAA for a name, and records the outcome. It returns the
// authorization as it stored it, or nil when it stored nothing.
func (h *Server) validateChallenge(ctx context.Context, job validationJob) *storage.Authorization {
	var err error
	for try := 0; try < h.cfg.ValidationAttempts; try++ {
		if try > 0 {
			select {
			case <-time.After(attemptDelay):
			case <-ctx.Done():
			}
		}
		if err = h.validateOnce(ctx, job); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err == nil && job.ident.Type == "dns" {
		err = h.validator.CAA(ctx, job.ident.Value, job.wildcard, job.accountURI, job.typ)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // shutting down: leave it processing, a retry queues it again
	}
	var failure []byte
	if err == nil {
		h.metrics.Validation(job.typ, "")
		h.logger.Debug("challenge validated", zap.String("authz", job.authzID), zap.String("type", job.typ),
			zap.String("identifier", job.ident.Value))
	} else {
		p := validationProblem(err)
		failure = problemJSON(p)
		h.metrics.Validation(job.typ, p.kind())
		// An operator sees why a client's validation failed.
		h.logger.Info("challenge failed", zap.String("authz", job.authzID), zap.String("type", job.typ),
			zap.String("identifier", job.ident.Value), zap.String("problem", p.Type), zap.Error(err))
		if err := h.recordFailedValidation(context.WithoutCancel(ctx), job.accountID, job.ident.Value); err != nil {
			h.logger.Error("counting a failed validation", zap.String("authz", job.authzID), zap.Error(err))
		}
	}
	// Write with a context of its own: an outcome must not be lost because
	// shutdown began after validation ended.
	return h.recordOutcome(context.WithoutCancel(ctx), job, failure)
}

func (h *Server) validateOnce(ctx context.Context, job validationJob) error {
	switch job.typ {
	case challengeHTTP01:
		return h.validator.HTTP01(ctx, job.ident.Value, job.token, job.keyAuth)
	case challengeDNS01:
		return h.validator.DNS01(ctx, job.ident.Value, job.keyAuth)
	case challengeTLSALPN01:
		return h.validator.TLSALPN01(ctx, job.ident.Value, job.keyAuth)
	}
	return fmt.Errorf("unknown challenge type %q", job.typ)
}

// recordOutcome writes a validation result by compare-and-swap, retrying
// on the stored authorization when a concurrent change moved its version.
// It returns what it stored, or nil.
func (h *Server) recordOutcome(ctx context.Context, job validationJob, problem []byte) *storage.Authorization {
	for attempt := 0; attempt < 5; attempt++ {
		var a *storage.Authorization
		if attempt == 0 && job.read != nil {
			read := *job.read
			a = &read
			a.Challenges = slices.Clone(job.read.Challenges)
		} else {
			var err error
			if a, err = h.store.GetAuthz(ctx, job.authzID); err != nil {
				h.logger.Error("loading authorization for validation outcome", zap.String("authz", job.authzID), zap.Error(err))
				return nil
			}
		}
		i := challengeIndex(a, job.typ)
		if i < 0 || a.Status != storage.StatusPending {
			return nil // deactivated or decided meanwhile
		}
		if st := a.Challenges[i].Status; st != storage.StatusPending && st != storage.StatusProcessing {
			return nil
		}
		challengeOutcome(a, i, problem, h.now().UTC())
		err := h.store.UpdateAuthz(ctx, a)
		if err == nil {
			h.authzDecided(ctx, a)
			return a
		}
		if !errors.Is(err, storage.ErrConflict) {
			h.logger.Error("recording validation outcome", zap.String("authz", job.authzID), zap.Error(err))
			return nil
		}
	}
	return nil
}
