package gateway

import (
	"net/http"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// caaRecheckAfter is the age of a validation beyond which finalize checks
// CAA again (RFC 8659 §3 and the CA/Browser Forum's 8 hours).
const caaRecheckAfter = 8 * time.Hour

// recheckCAA checks CAA again for the order's names whose validation is
// older than caaRecheckAfter, one subproblem per refused name.
func (h *Server) recheckCAA(r *http.Request, acct *storage.Account, o *storage.Order) error {
	if len(h.cfg.CAAIdentities) == 0 {
		return nil
	}
	ctx := r.Context()
	now := h.now()
	var subs []*Problem
	for _, id := range o.AuthzIDs {
		a, err := h.store.GetAuthz(ctx, id)
		if err != nil {
			return err
		}
		if a.Identifier.Type != "dns" {
			continue
		}
		for _, c := range a.Challenges {
			if c.Status != storage.StatusValid || now.Sub(c.Validated) <= caaRecheckAfter {
				continue
			}
			if err := h.validator.CAA(ctx, a.Identifier.Value, a.Wildcard, h.accountURL(r, acct.ID), c.Type); err != nil {
				p := validationProblem(err)
				p.Identifier = &identifier{Type: "dns", Value: a.Identifier.Value}
				subs = append(subs, p)
			}
		}
	}
	switch len(subs) {
	case 0:
		return nil
	case 1:
		subs[0].Status = http.StatusForbidden
		return subs[0]
	}
	p := problem(ProblemCAA, "CAA records forbid issuance for %d names", len(subs))
	p.Subproblems = subs
	return p
}
