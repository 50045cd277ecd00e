package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// ordersPerPage is the page size of an account's orders list.
const ordersPerPage = 100

// maxBackdate is how far in the past a requested notBefore may lie: room
// for clients' clock skew, not for backdated certificates.
const maxBackdate = time.Hour

type orderBody struct {
	Status         string       `json:"status"`
	Expires        string       `json:"expires"`
	Identifiers    []identifier `json:"identifiers"`
	NotBefore      string       `json:"notBefore,omitempty"`
	NotAfter       string       `json:"notAfter,omitempty"`
	Error          *Problem     `json:"error,omitempty"`
	Authorizations []string     `json:"authorizations"`
	Finalize       string       `json:"finalize"`
	Certificate    string       `json:"certificate,omitempty"`
	Profile        string       `json:"profile,omitempty"`
	// Replaces is the certID of the certificate the order renews (RFC 9773 §5).
	Replaces string `json:"replaces,omitempty"`
}

// newOrderPayload is a newOrder request; a NotBefore or NotAfter that is
// "" or the zero time is not given (payload.go).
type newOrderPayload struct {
	Identifiers []identifier `json:"identifiers"`
	NotBefore   string       `json:"notBefore"`
	NotAfter    string       `json:"notAfter"`
	Profile     string       `json:"profile"`
	// Replaces is a certID (RFC 9773 §5).
	Replaces string `json:"replaces"`
}

func (h *Server) orderURL(r *http.Request, id string) string {
	return h.resourceURL(r, pathOrder, id)
}

// newOrder serves RFC 8555 §7.4.
func (h *Server) newOrder(w http.ResponseWriter, r *http.Request) (*response, error) {
	req, err := h.readSigned(r, w, h.resourceURL(r, pathNewOrder), byKID)
	if err != nil {
		return nil, err
	}
	var p newOrderPayload
	if err := decodePayload(req.payload, &p); err != nil {
		return nil, err
	}
	ids, err := checkIdentifiers(p.Identifiers, h.cfg.MaxIdentifiers, h.allowIP)
	if err != nil {
		return nil, err
	}
	reg, err := h.accountRegistration(r.Context(), req.account)
	if err != nil {
		return nil, err
	}
	if err := h.policyFor(reg).check(ids); err != nil {
		return nil, err
	}
	profile, err := h.orderProfile(p.Profile, reg)
	if err != nil {
		return nil, err
	}
	now := h.now().UTC()
	notBefore, notAfter, err := h.checkValidity(p.NotBefore, p.NotAfter, h.maxLifetime(profile), now)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	replaces, claimedBy, err := h.checkReplaces(ctx, req.account, ids, p.Replaces)
	if err != nil {
		return nil, err
	}
	if err := h.checkFailedValidations(ctx, req.account.ID, ids); err != nil {
		return nil, err
	}
	limits := h.cfg.Limits
	giveOrder, err := h.take(ctx, limitOrders, limits.OrdersPerAccount, "account", req.account.ID, 1)
	if err != nil {
		return nil, err
	}
	order := &storage.Order{
		ID:          NewID(),
		AccountID:   req.account.ID,
		Status:      storage.StatusPending,
		Identifiers: ids,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		Profile:     profile,
		Expires:     now.Add(time.Duration(h.cfg.OrderLifetime)),
		CreatedAt:   now,
		UpdatedAt:   now,
		Replaces:    replaces,
	}
	authzs, err := h.orderAuthzs(ctx, req.account.ID, ids, order, now)
	if err != nil {
		giveOrder()
		return nil, err
	}
	var fresh []*storage.Authorization
	for _, a := range authzs {
		if a.Version == 0 {
			fresh = append(fresh, a)
		}
	}
	giveAuthzs, err := h.take(ctx, limitPendingAuthz, limits.PendingAuthzPerAccount, "account", req.account.ID, len(fresh))
	if err != nil {
		giveOrder()
		return nil, err
	}
	if err := h.store.CreateOrder(detach(ctx), order, authzs); err != nil {
		giveOrder()
		giveAuthzs()
		return nil, err
	}
	if replaces != "" {
		if err := h.claimReplacement(ctx, order, claimedBy); err != nil {
			h.withdrawOrder(ctx, order, fresh, err)
			giveOrder()
			giveAuthzs()
			return nil, err
		}
	}
	h.metrics.OrderCreated(h.metricsProfile(profile))
	statuses := make([]string, len(authzs))
	for i, a := range authzs {
		statuses[i] = authzStatus(a, now)
	}
	// checkReplaces parsed p.Replaces strictly, one spelling per certID,
	// and matched it to the certificate: it is the certificate's certID
	// ("" when the order replaces none).
	return h.orderResponse(r, order, statuses, p.Replaces, http.StatusCreated), nil
}

// withdrawOrder makes invalid an order newOrder stored but refuses after
// all, with the problem err, and deactivates the authorizations made for
// it, so that nothing of it lives on. A failure is logged: finalize asks
// again (checkClaim).
func (h *Server) withdrawOrder(ctx context.Context, o *storage.Order, fresh []*storage.Authorization, err error) {
	ctx = detach(ctx)
	now := h.now().UTC()
	orderFailed(o, problemJSON(asProblem(err)), now)
	if err := h.store.UpdateOrder(ctx, o); err != nil {
		h.logger.Error("withdrawing a refused order", zap.String("order", o.ID), zap.Error(err))
	}
	for _, a := range fresh {
		if deactivateAuthz(a, now) != nil {
			continue
		}
		if err := h.store.UpdateAuthz(ctx, a); err != nil {
			h.logger.Error("deactivating an authorization of a refused order", zap.String("authz", a.ID), zap.Error(err))
		}
	}
}

// orderAuthzs returns the authorizations of a new order, one per
// identifier, and shortens the order's expiry to theirs.
func (h *Server) orderAuthzs(ctx context.Context, accountID string, ids []identifier, order *storage.Order, now time.Time) ([]*storage.Authorization, error) {
	authzs := make([]*storage.Authorization, len(ids))
	for i, id := range ids {
		a, err := h.authzFor(ctx, accountID, id, now)
		if err != nil {
			return nil, err
		}
		authzs[i] = a
		order.AuthzIDs = append(order.AuthzIDs, a.ID)
		if a.Expires.Before(order.Expires) {
			order.Expires = a.Expires
		}
	}
	return authzs, nil
}

// authzFor reuses the account's valid authorization for id, or makes a new
// pending one offering the configured challenges (only dns-01 for a
// wildcard, RFC 8555 §7.1.3).
func (h *Server) authzFor(ctx context.Context, accountID string, id identifier, now time.Time) (*storage.Authorization, error) {
	name, wildcard := splitWildcard(id.Value)
	ident := identifier{Type: id.Type, Value: name}
	// Reuse only an authorization that outlives the new order, so that a
	// ready order cannot turn invalid under the client.
	a, err := h.store.ValidAuthz(ctx, accountID, ident, wildcard, now.Add(time.Duration(h.cfg.OrderLifetime)))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	a = &storage.Authorization{
		ID:         NewID(),
		AccountID:  accountID,
		Identifier: ident,
		Wildcard:   wildcard,
		Status:     storage.StatusPending,
		Expires:    now.Add(time.Duration(h.cfg.AuthzLifetime)),
	}
	for _, typ := range h.cfg.Challenges {
		if wildcard && typ != challengeDNS01 || id.Type == "ip" && typ == challengeDNS01 {
			continue // RFC 8555 §7.1.3, RFC 8738 §7
		}
		a.Challenges = append(a.Challenges, storage.Challenge{Type: typ, Token: newToken(), Status: storage.StatusPending})
	}
	if len(a.Challenges) == 0 {
		return nil, problem(ProblemRejectedIdentifier, "%s: no offered challenge type can validate it", id.Value)
	}
	return a, nil
}

// checkValidity parses a requested notBefore/notAfter and holds it to
// maxLife, the order's profile's or issuer's maximum lifetime. Times not
// given are zero: the issuer's default.
func (h *Server) checkValidity(nb, na string, maxLife time.Duration, now time.Time) (time.Time, time.Time, error) {
	notBefore, err := optionalTime("notBefore", nb)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	notAfter, err := optionalTime("notAfter", na)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !notAfter.IsZero() && !notAfter.After(now) {
		return notBefore, notAfter, malformed("notAfter is in the past")
	}
	start := notBefore
	if start.IsZero() {
		start = now
	}
	switch {
	case maxLife == 0 && (!notBefore.IsZero() || !notAfter.IsZero()):
		return notBefore, notAfter, malformed("this CA sets the validity of its certificates: leave notBefore and notAfter out")
	case !notBefore.IsZero() && notBefore.Before(now.Add(-maxBackdate)):
		return notBefore, notAfter, malformed("notBefore may be at most %s in the past", maxBackdate)
	case !notBefore.IsZero() && notBefore.After(now.Add(maxLife)):
		return notBefore, notAfter, malformed("notBefore is too far in the future")
	case !notAfter.IsZero() && !notAfter.After(start):
		return notBefore, notAfter, malformed("notAfter must be after notBefore")
	case !notAfter.IsZero() && notAfter.Sub(start) > maxLife:
		return notBefore, notAfter, malformed("validity longer than the issuer's maximum of %s", maxLife)
	}
	return notBefore, notAfter, nil
}

// orderResource serves an order URL (§7.1.3).
func (h *Server) orderResource(w http.ResponseWriter, r *http.Request) (*response, error) {
	id := r.PathValue("id")
	req, err := h.readSigned(r, w, h.orderURL(r, id), byKID)
	if err != nil {
		return nil, err
	}
	if !req.postAsGet() {
		return nil, malformed("an order is read with POST-as-GET (empty payload)")
	}
	order, statuses, err := h.loadOrder(r.Context(), req.account, id)
	if err != nil {
		return nil, err
	}
	order, statuses = h.resumeIfStale(r.Context(), order, statuses)
	return h.orderResponse(r, order, statuses, h.replacesCertID(r.Context(), order), http.StatusOK), nil
}

// loadOrder returns an order of the account with its authorizations'
// current statuses.
func (h *Server) loadOrder(ctx context.Context, acct *storage.Account, id string) (*storage.Order, []string, error) {
	order, err := h.store.GetOrder(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, notFound("order")
	}
	if err != nil {
		return nil, nil, err
	}
	if order.AccountID != acct.ID {
		return nil, nil, unauthorized("order belongs to another account")
	}
	statuses, err := h.authzStatuses(ctx, order)
	if err != nil {
		return nil, nil, err
	}
	return order, statuses, nil
}

// authzStatuses are the current statuses of an order's authorizations.
func (h *Server) authzStatuses(ctx context.Context, order *storage.Order) ([]string, error) {
	now := h.now()
	statuses := make([]string, len(order.AuthzIDs))
	for i, aid := range order.AuthzIDs {
		a, err := h.store.GetAuthz(ctx, aid)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			statuses[i] = storage.StatusExpired // cleaned up after it expired
		case err != nil:
			return nil, err
		default:
			statuses[i] = authzStatus(a, now)
		}
	}
	return statuses, nil
}

// orderResponse is the order object of o. replacesID is the certID of
// the certificate it replaces, "" for none: newOrder has it as the client
// sent it, the others read it (replacesCertID).
func (h *Server) orderResponse(r *http.Request, o *storage.Order, authzStatuses []string, replacesID string, status int) *response {
	url := h.orderURL(r, o.ID)
	st := orderStatus(o, authzStatuses, h.now())
	body := orderBody{
		Status:      st,
		Expires:     o.Expires.UTC().Format(time.RFC3339),
		Identifiers: o.Identifiers,
		Error:       storedProblem(o.Error),
		Finalize:    h.resourceURL(r, pathOrderFinalize, o.ID),
		Profile:     o.Profile,
		Replaces:    replacesID,
	}
	if !o.NotBefore.IsZero() {
		body.NotBefore = o.NotBefore.Format(time.RFC3339)
	}
	if !o.NotAfter.IsZero() {
		body.NotAfter = o.NotAfter.Format(time.RFC3339)
	}
	for _, aid := range o.AuthzIDs {
		body.Authorizations = append(body.Authorizations, h.authzURL(r, aid))
	}
	if st == storage.StatusValid {
		body.Certificate = h.resourceURL(r, pathCertificate, o.CertificateSerial)
	}
	resp := &response{status: status, location: url, body: body}
	if st == storage.StatusProcessing {
		resp.retryAfter = 1
	}
	return resp
}

// ordersList serves an account's orders (§7.1.2.1), paged by cursor.
func (h *Server) ordersList(r *http.Request, req *signedRequest) (*response, error) {
	if !req.postAsGet() {
		return nil, malformed("the orders list is read with POST-as-GET (empty payload)")
	}
	cursor := r.URL.Query().Get("cursor")
	ids, next, err := h.store.ListOrders(r.Context(), req.account.ID, cursor, ordersPerPage)
	if err != nil {
		return nil, err
	}
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = h.orderURL(r, id)
	}
	resp := &response{status: http.StatusOK, body: map[string][]string{"orders": urls}}
	if next != "" {
		nextURL := h.accountURL(r, req.account.ID) + "/orders?cursor=" + url.QueryEscape(next)
		resp.links = append(resp.links, linkHeader(nextURL, "next"))
	}
	return resp, nil
}
