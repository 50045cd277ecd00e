package caddyacmegw

import (
	"context"
	"encoding/json"

	"go.uber.org/zap"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// officer is one officer acting on one gateway: the one implementation of
// every officer action and listing, which the admin API and the console
// both call, so that both check the same things and write one audit trail.
// Its errors are apiError and storeError values, which each front end
// shows in its own way.
type officer struct {
	h *Handler
	// actor names the officer in the audit trail and on the records they
	// change.
	actor string
}

// audit appends the trail entry of a change that has been made. Its
// failure does not undo the change nor fail the request, which would make
// the officer retry it; the entry is logged whole instead, so that the trail
// can be completed from the log.
func (o *officer) audit(ctx context.Context, action, target string, detail any) {
	e := &storage.AuditEntry{
		ID:     gateway.NewID(),
		Time:   o.h.now().UTC(),
		Actor:  o.actor,
		Action: action,
		Target: target,
	}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err == nil {
			e.Detail = b
		}
	}
	fields := []zap.Field{
		zap.String("gateway", o.h.Name),
		zap.String("audit_id", e.ID),
		zap.String("actor", e.Actor),
		zap.String("action", action),
		zap.String("target", target),
		zap.ByteString("detail", e.Detail),
	}
	if err := o.h.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		o.h.logger.Error("writing audit entry failed; the change was made", append(fields, zap.Error(err))...)
		return
	}
	o.h.logger.Info("officer change", fields...)
}
