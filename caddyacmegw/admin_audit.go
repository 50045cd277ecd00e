package caddyacmegw

import (
	"encoding/json"
	"net/http"
	"time"
)

// auditView is an audit entry with its detail as JSON, not base64.
type auditView struct {
	ID     string          `json:"id"`
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

func (q *adminRequest) listAudit() error {
	_, p, err := q.query()
	if err != nil {
		return err
	}
	entries, next, err := q.h.store.ListAudit(q.r.Context(), p.cursor, p.limit)
	if err != nil {
		return storeError(err, "audit")
	}
	out := auditPage{Audit: []auditView{}, Next: next}
	for _, e := range entries {
		v := auditView{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target}
		if json.Valid(e.Detail) {
			v.Detail = e.Detail
		}
		out.Audit = append(out.Audit, v)
	}
	return writeJSON(q.w, http.StatusOK, out)
}
