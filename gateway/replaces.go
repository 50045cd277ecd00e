package gateway

import (
	"context"
	"errors"
	"slices"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// checkReplaces checks a newOrder's "replaces" (RFC 9773 §5) and returns
// the serial of the certificate it names, "" when it names none, and the
// order that claims it now, "" for none. The certificate must be known,
// the account's own, share an identifier with the order, and not have
// been replaced already, nor be claimed by another order that is not
// invalid. The order claims it once it is stored (claimReplacement).
func (h *Server) checkReplaces(ctx context.Context, acct *storage.Account, ids []identifier, replaces string) (serial, claimedBy string, err error) {
	if replaces == "" {
		return "", "", nil
	}
	id, err := parseCertID(replaces)
	if err != nil {
		return "", "", err
	}
	old, err := h.certificateByID(ctx, id)
	if err != nil {
		return "", "", err
	}
	if old.AccountID != acct.ID {
		return "", "", unauthorized("the certificate named in replaces belongs to another account")
	}
	shared := slices.ContainsFunc(ids, func(id identifier) bool { return slices.Contains(old.Names, id.Value) })
	if !shared {
		return "", "", malformed("the order shares no identifier with the certificate named in replaces")
	}
	if old.ReplacedBy != "" {
		return "", "", problem(ProblemAlreadyReplaced, "certificate %s was replaced already, by %s", old.Serial, old.ReplacedBy)
	}
	if claimedBy, err = h.deadClaim(ctx, acct, old.Serial); err != nil {
		return "", "", err
	}
	return old.Serial, claimedBy, nil
}

// claimReplacement makes the stored order o the one that replaces the
// certificate o.Replaces, by compare-and-swap from prev, the dead claim
// checkReplaces found: of two racing orders one wins, and a claim made
// since checkReplaces read it loses this one the swap. An order claims
// only once it is stored, so that a claim naming an order that is not
// found names one that ended and was deleted: an order still being stored
// cannot be taken for one that failed.
func (h *Server) claimReplacement(ctx context.Context, o *storage.Order, prev string) error {
	err := h.store.ClaimReplacement(detach(ctx), o.Replaces, o.ID, prev)
	if errors.Is(err, storage.ErrConflict) {
		return problem(ProblemAlreadyReplaced, "certificate %s is being replaced already, by another order", o.Replaces)
	}
	return err
}

// deadClaim returns the order that claims the certificate serial of acct,
// "" for none, when that order may be taken over: it is invalid, or gone.
// An order that is not invalid is alreadyReplaced.
func (h *Server) deadClaim(ctx context.Context, acct *storage.Account, serial string) (string, error) {
	prev, err := h.store.ReplacementClaim(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	alive, err := h.orderAlive(ctx, acct, prev)
	if err != nil {
		return "", err
	}
	if alive {
		return "", problem(ProblemAlreadyReplaced, "certificate %s is being replaced already, by order %s", serial, prev)
	}
	return prev, nil
}

// checkClaim refuses to issue an order that replaces a certificate another
// order claims: one whose newOrder lost the claim but could not be made
// invalid.
func (h *Server) checkClaim(ctx context.Context, o *storage.Order) error {
	if o.Replaces == "" {
		return nil
	}
	claim, err := h.store.ReplacementClaim(ctx, o.Replaces)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	case claim != o.ID:
		return problem(ProblemAlreadyReplaced, "certificate %s is being replaced by another order, %s", o.Replaces, claim)
	}
	return nil
}

// orderAlive reports whether the order of acct with id is stored and not
// invalid. Its authorizations are read only when its status depends on
// them: pending or ready, and not expired.
func (h *Server) orderAlive(ctx context.Context, acct *storage.Account, id string) (bool, error) {
	o, err := h.store.GetOrder(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil || o.AccountID != acct.ID {
		return false, err
	}
	now := h.now()
	var statuses []string
	if (o.Status == storage.StatusPending || o.Status == storage.StatusReady) && now.Before(o.Expires) {
		if statuses, err = h.authzStatuses(ctx, o); err != nil {
			return false, err
		}
	}
	return orderStatus(o, statuses, now) != storage.StatusInvalid, nil
}

// recordReplacement marks the certificate that cert replaces as replaced
// by it, by compare-and-swap, unless another has replaced it first. The
// new certificate is stored already; a failure here is logged, not the
// client's.
func (h *Server) recordReplacement(ctx context.Context, cert *storage.Certificate) {
	if cert.Replaces == "" {
		return
	}
	old, err := h.store.GetCertificate(ctx, cert.Replaces)
	if err == nil {
		_, err = h.changeCertificate(ctx, old, func(c *storage.Certificate) error {
			if c.ReplacedBy != "" {
				return errReplacedAlready
			}
			c.ReplacedBy = cert.Serial
			return nil
		})
	}
	switch {
	case errors.Is(err, errReplacedAlready):
		h.logger.Info("certificate was replaced already", zap.String("serial", cert.Replaces),
			zap.String("new_serial", cert.Serial))
	case err != nil:
		h.logger.Error("recording which certificate replaced which", zap.String("serial", cert.Replaces),
			zap.String("new_serial", cert.Serial), zap.Error(err))
	}
}

// errReplacedAlready stops recordReplacement: another certificate
// replaced that one first.
var errReplacedAlready = errors.New("certificate was replaced already")

// replacesCertID is the certID of the certificate an order replaces, as
// the order object shows it; "" when it replaces none or that one cannot
// be read.
func (h *Server) replacesCertID(ctx context.Context, o *storage.Order) string {
	if o.Replaces == "" {
		return ""
	}
	old, err := h.store.GetCertificate(ctx, o.Replaces)
	if err != nil {
		return ""
	}
	leaf, err := storedLeaf(old)
	if err != nil {
		return ""
	}
	return certIDOf(leaf)
}
