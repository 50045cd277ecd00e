package gateway

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// Limit caps the events of one kind per key (an account, a client IP, a
// registration) in fixed windows of time, as public CAs do.
type Limit struct {
	// Count is how many events one window allows. 0 takes the default; a
	// negative Count turns the limit off.
	Count int
	// Window is the length of a window. 0 takes the default.
	Window time.Duration
}

// Off reports whether the limit is turned off.
func (l Limit) Off() bool { return l.Count < 0 }

// Limits are the rate limits of a Server. The defaults lie well above
// what an honest client does (Boulder's are the model); each is set or
// turned off on its own.
type Limits struct {
	// OrdersPerAccount caps the new orders of an account. Default: 300
	// per 3h.
	OrdersPerAccount Limit
	// PendingAuthzPerAccount caps the pending authorizations of an
	// account, counted as those it made in the window that are still
	// pending (validated, failed or deactivated ones are given back).
	// With the default window, the authorization lifetime, one that
	// expires pending is counted no longer than it lives. Default: 1000
	// per AuthzLifetime.
	PendingAuthzPerAccount Limit
	// FailedValidationsPerName caps the failed validations of one account
	// for one name; an account over it cannot order that name until the
	// window ends. Default: 5 per 1h.
	FailedValidationsPerName Limit
	// AccountsPerIP caps the accounts created from one client IP address
	// in open registration without an external account binding. Default:
	// 10 per 3h.
	AccountsPerIP Limit
	// CertificatesPerRegistration caps the certificates issued to the
	// accounts of one registration (external account binding), or to one
	// account that has none. Default: 1000 per 24h.
	CertificatesPerRegistration Limit
}

// The names of the limits, as a refusal and the configuration name them.
const (
	limitOrders       = "orders_per_account"
	limitPendingAuthz = "pending_authorizations_per_account"
	limitFailed       = "failed_validations_per_name"
	limitAccounts     = "accounts_per_ip"
	limitCertificates = "certificates_per_registration"
)

// setLimitDefaults fills in the limits left zero.
func setLimitDefaults(l *Limits, authzLifetime time.Duration) {
	for _, d := range []struct {
		v      *Limit
		count  int
		window time.Duration
	}{
		{&l.OrdersPerAccount, 300, 3 * time.Hour},
		{&l.PendingAuthzPerAccount, 1000, authzLifetime},
		{&l.FailedValidationsPerName, 5, time.Hour},
		{&l.AccountsPerIP, 10, 3 * time.Hour},
		{&l.CertificatesPerRegistration, 1000, 24 * time.Hour},
	} {
		if d.v.Count == 0 {
			d.v.Count = d.count
		}
		if d.v.Window <= 0 {
			d.v.Window = d.window
		}
	}
}

// Counter keeps the counts of the limits, one per limit, key and window
// start. A backend shared by several gateway instances implements it so
// that they count together; otherwise each gateway counts in memory.
// Implementations are safe for concurrent use and honour ctx.
type Counter interface {
	// AddCount adds n to the count of key under limit in the window that
	// starts at start and lasts window, unless the sum would exceed max,
	// and reports whether it added. A negative n (giving back what a
	// failed request took) is always added. A count may be forgotten once
	// its window has ended.
	AddCount(ctx context.Context, limit, key string, start time.Time, window time.Duration, n, max int) (bool, error)
	// HighestCount returns the highest count among keys under limit in the
	// window that starts at start: 0 when none has one.
	HighestCount(ctx context.Context, limit string, keys []string, start time.Time) (int, error)
}

// window is the fixed window of l that holds now: its start, and how
// long from now until it ends.
func (l Limit) window(now time.Time) (start time.Time, left time.Duration) {
	start = now.Truncate(l.Window)
	return start, start.Add(l.Window).Sub(now)
}

// rateLimited is the refusal of an event over limit l named name.
func rateLimited(name string, l Limit, per string, left time.Duration) *Problem {
	p := problem(ProblemRateLimited, "rate limit %s exceeded: at most %d per %s per %s; retry after %s",
		name, l.Count, per, l.Window, left.Round(time.Second))
	p.retryAfter = int(math.Ceil(left.Seconds()))
	if p.retryAfter < 1 {
		p.retryAfter = 1
	}
	return p
}

// take adds n events of key to the limit name, or returns its refusal.
// It returns the function that gives them back, for a request that fails
// after taking them.
func (h *Server) take(ctx context.Context, name string, l Limit, per, key string, n int) (giveBack func(), err error) {
	if l.Off() || n <= 0 {
		return func() {}, nil
	}
	start, left := l.window(h.now())
	ok, err := h.counter.AddCount(ctx, name, key, start, l.Window, n, l.Count)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, rateLimited(name, l, per, left)
	}
	return func() {
		// Giving back is best effort: a count left too high only
		// makes the limit stricter until its window ends.
		_, _ = h.counter.AddCount(detach(ctx), name, key, start, l.Window, -n, l.Count)
	}, nil
}

// takeAccount counts a new account against the limit of its client IP:
// in open registration, when it comes without an external account
// binding (reg nil).
func (h *Server) takeAccount(r *http.Request, reg *storage.Registration) (giveBack func(), err error) {
	if reg != nil || h.cfg.RegistrationMode != RegistrationOpen {
		return func() {}, nil
	}
	return h.take(r.Context(), limitAccounts, h.cfg.Limits.AccountsPerIP, "client IP", h.cfg.ClientIP(r), 1)
}

// takeCertificate counts a certificate against the limit of the
// account's registration, or of the account when it has none.
func (h *Server) takeCertificate(ctx context.Context, acct *storage.Account, reg *storage.Registration) (giveBack func(), err error) {
	key := "account " + acct.ID
	if reg != nil {
		key = "registration " + reg.KeyID
	}
	return h.take(ctx, limitCertificates, h.cfg.Limits.CertificatesPerRegistration, "registration", key, 1)
}

// authzDecided gives back the count of an authorization that is no longer
// pending to the window it was counted in, when it was made: a Limit
// counts pending authorizations as those made in its window and not
// decided since.
func (h *Server) authzDecided(ctx context.Context, a *storage.Authorization) {
	l := h.cfg.Limits.PendingAuthzPerAccount
	if l.Off() {
		return
	}
	made := a.Expires.Add(-h.cfg.AuthzLifetime)
	start, _ := l.window(made)
	if _, err := h.counter.AddCount(ctx, limitPendingAuthz, a.AccountID, start, l.Window, -1, l.Count); err != nil {
		h.logger.Warn("giving back a pending authorization's count", zap.String("authz", a.ID), zap.Error(err))
	}
}

// failedKey is the key of an account's failed validations of a name.
func failedKey(accountID, name string) string { return accountID + " " + name }

// checkFailedValidations refuses an order for names of which the account
// has had too many validations fail in the current window.
func (h *Server) checkFailedValidations(ctx context.Context, accountID string, ids []identifier) error {
	l := h.cfg.Limits.FailedValidationsPerName
	if l.Off() {
		return nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		name, _ := splitWildcard(id.Value)
		keys[i] = failedKey(accountID, name)
	}
	start, left := l.window(h.now())
	n, err := h.counter.HighestCount(ctx, limitFailed, keys, start)
	if err != nil {
		return err
	}
	if n >= l.Count {
		return rateLimited(limitFailed, l, "account and name", left)
	}
	return nil
}

// recordFailedValidation counts a failed validation of name by an
// account.
func (h *Server) recordFailedValidation(ctx context.Context, accountID, name string) error {
	l := h.cfg.Limits.FailedValidationsPerName
	if l.Off() {
		return nil
	}
	start, _ := l.window(h.now())
	// Counting stops at the limit: more failures change nothing.
	_, err := h.counter.AddCount(ctx, limitFailed, failedKey(accountID, name), start, l.Window, 1, l.Count)
	return err
}

// RemoteIP is the client IP of r as net/http sees it: the host of its
// RemoteAddr. It is the default of Config.ClientIP.
func RemoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// String describes l for logs and errors.
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("%d per %s", l.Count, l.Window)
}
