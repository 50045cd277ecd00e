package caddyacmegw

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
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
	out, err := q.officer().listAudit(q.r.Context(), auditFilter{}, p)
	if err != nil {
		return err
	}
	return writeJSON(q.w, http.StatusOK, out)
}

// auditFilter narrows the audit trail: Actor and Action match whole (an
// Action ending in "." matches every action it begins), the times bound
// it ([Since, Until)); zero values match all.
type auditFilter struct {
	Actor, Action string
	Since, Until  time.Time
}

func (f auditFilter) empty() bool { return f == auditFilter{} }

func (f auditFilter) match(e *storage.AuditEntry) bool {
	switch {
	case f.Actor != "" && e.Actor != f.Actor:
		return false
	case f.Action != "" && e.Action != f.Action && !(strings.HasSuffix(f.Action, ".") && strings.HasPrefix(e.Action, f.Action)):
		return false
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !e.Time.Before(f.Until):
		return false
	}
	return true
}

// filterScanPages bounds the storage pages one filtered listing reads, so
// that a filter matching little cannot make one request read a whole
// listing; the page then holds fewer entries, or none, before its next.
const filterScanPages = 20

// scanFiltered reads the pages of a listing from cursor, at most
// filterScanPages of them: read reads one at a cursor, keeps what matches
// and says where the listing goes on and whether the answer is full. A
// listing not filtered stops after its first page. It returns where the
// listing goes on, "" at its end.
func scanFiltered(cursor string, filtered bool, read func(cursor string) (next string, full bool, err error)) (string, error) {
	for range filterScanPages {
		next, full, err := read(cursor)
		if err != nil {
			return "", err
		}
		cursor = next
		if next == "" || full || !filtered {
			break
		}
	}
	return cursor, nil
}

// listAudit pages through the trail, oldest first. Storage lists the trail
// unfiltered, so a filter is applied to the pages it reads, as listOrders
// does; the cursor is storage's.
func (o *officer) listAudit(ctx context.Context, f auditFilter, p page) (auditPage, error) {
	out := auditPage{Audit: []auditView{}}
	next, err := scanFiltered(p.cursor, !f.empty(), func(cursor string) (string, bool, error) {
		entries, next, err := o.h.store.ListAudit(ctx, cursor, p.limit-len(out.Audit))
		if err != nil {
			return "", false, storeError(err, "audit")
		}
		for _, e := range entries {
			if f.match(e) {
				out.Audit = append(out.Audit, viewAudit(e))
			}
		}
		return next, len(out.Audit) == p.limit, nil
	})
	if err != nil {
		return auditPage{}, err
	}
	out.Next = next
	return out, nil
}

func viewAudit(e *storage.AuditEntry) auditView {
	v := auditView{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target}
	if json.Valid(e.Detail) {
		v.Detail = e.Detail
	}
	return v
}
