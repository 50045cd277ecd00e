package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// PendingDeadliner is an Issuer that bounds how long an order may wait
// for it.
type PendingDeadliner interface {
	MaxPending() time.Duration
}

// resumeIfStale takes over a processing order whose issuance was left
// behind (its process stopped) or whose outcome at the CA is not known
// yet, so that no order stays processing for good. A compare-and-swap on
// the order decides which request resumes it.
func (h *Server) resumeIfStale(ctx context.Context, o *storage.Order, statuses []string) (*storage.Order, []string) {
	now := h.now().UTC()
	if o.Status != storage.StatusProcessing {
		return o, statuses
	}
	resumer, canResume := h.issuer.(Resumer)
	wait := staleProcessing
	switch o.IssuerRef {
	case "":
	case retryFromCSR:
		wait = pendingRetry
	default:
		if !canResume {
			return o, statuses
		}
		wait = time.Second
	}
	if now.Sub(o.UpdatedAt) < wait {
		return o, statuses
	}
	retrying := o.IssuerRef == retryFromCSR
	since := o.UpdatedAt
	o.UpdatedAt = now
	if retrying {
		// Claimed: until this attempt records its outcome, others wait
		// staleProcessing, longer than an issuer call may take.
		o.IssuerRef = ""
	}
	ctx = detach(ctx)
	if err := h.store.UpdateOrder(ctx, o); err != nil {
		return o, statuses // another request resumes it, or storage is down
	}
	var chain []*x509.Certificate
	var err error
	switch d, ok := h.issuer.(PendingDeadliner); {
	case ok && now.Sub(o.CreatedAt) > d.MaxPending():
		err = &IssueError{Kind: ProblemServerInternal, Detail: "the CA did not issue the certificate within " + d.MaxPending().String()}
	case canResume && !retrying:
		// A lost answer, or a request left behind mid-way by a process
		// that stopped: a CA that keeps what it signs (CM) may have
		// issued, and sending the request again could issue a second
		// certificate. The issuer finds out instead.
		chain, err = h.callIssuer(ctx, func(ctx context.Context) ([]*x509.Certificate, error) {
			req, err := h.issueRequestFor(ctx, o)
			if err != nil {
				return nil, err
			}
			return resumer.Resume(ctx, req, o.IssuerRef, since)
		})
	default:
		chain, err = h.callIssuer(ctx, func(ctx context.Context) ([]*x509.Certificate, error) {
			return h.issueFromCSR(ctx, o)
		})
	}
	if stored, err := h.completeIssuance(ctx, o, chain, err); err == nil {
		if stored.Status != storage.StatusProcessing {
			h.pending.remove(o.ID)
		}
		return stored, statuses
	}
	return o, statuses
}

// pendingRetry is how long an order waits before its issuance is tried
// again from its CSR after a transient failure of the CA.
const pendingRetry = 5 * time.Second

// issueFromCSR issues again for a processing order from its stored CSR.
func (h *Server) issueFromCSR(ctx context.Context, o *storage.Order) ([]*x509.Certificate, error) {
	req, err := h.issueRequestFor(ctx, o)
	if err != nil {
		return nil, err
	}
	return h.issuer.Issue(ctx, req)
}

// issueRequestFor rebuilds the issue request of a processing order from
// its stored CSR, with what the account adds (contact e-mail,
// registration's procedure), once the account, its registration, the
// name policy and the CSR policy still allow it, as at finalize. A storage failure leaves the
// order to be tried again.
func (h *Server) issueRequestFor(ctx context.Context, o *storage.Order) (*IssueRequest, error) {
	csr, err := x509.ParseCertificateRequest(o.CSR)
	if err != nil {
		return nil, err
	}
	acct, err := h.store.GetAccount(ctx, o.AccountID)
	if err != nil {
		return nil, retryLater(err)
	}
	if acct.Status != storage.StatusValid {
		return nil, &IssueError{Kind: ProblemUnauthorized, Detail: "the account is " + acct.Status}
	}
	reg, err := h.mayIssue(ctx, acct, o)
	if err == nil {
		// A CSR stored before the CSR policy last changed meets it too.
		err = checkCSR(csr, o, acct)
	}
	if err != nil {
		var p *Problem
		if errors.As(err, &p) && p.cause == nil {
			return nil, &IssueError{Kind: p.kind(), Detail: p.Detail}
		}
		return nil, retryLater(err)
	}
	return h.issueRequest(o, csr, acct, reg), nil
}

// retryLater turns a storage failure into a pending answer, so that the
// order is tried again rather than failed for good.
func retryLater(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return &PendingError{RetryAfter: pendingRetry}
}

// PendingOrders remembers the orders this process left waiting on the CA,
// and a background poller completes them without waiting for a client.
// The set may be shared by the Servers of one gateway; after a restart
// it starts empty, and the stored state lets the next client poll resume
// each order.
type PendingOrders struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// maxPendingTracked bounds the orders polled in the background.
const maxPendingTracked = 10_000

func (p *PendingOrders) add(id string) {
	if p == nil {
		return // no background poller: client polls resume the order
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids = make(map[string]struct{})
	}
	if len(p.ids) < maxPendingTracked {
		p.ids[id] = struct{}{}
	}
}

func (p *PendingOrders) remove(id string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ids, id)
}

func (p *PendingOrders) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.ids))
	for id := range p.ids {
		out = append(out, id)
	}
	return out
}

// pollPending resumes the pending orders every interval until ctx ends.
func (h *Server) pollPending(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := h.pending.list()
		h.metrics.Pending(len(ids))
		for _, id := range ids {
			o, err := h.store.GetOrder(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				h.pending.remove(id) // deleted, by an officer or as expired
				continue
			}
			if err != nil {
				if ctx.Err() == nil {
					h.logger.Debug("polling pending order", zap.String("order", id), zap.Error(err))
				}
				continue
			}
			if o.Status != storage.StatusProcessing {
				h.pending.remove(id)
				continue
			}
			h.resumeIfStale(ctx, o, nil)
		}
	}
}
