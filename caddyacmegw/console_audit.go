package caddyacmegw

import (
	"net/http"
	"strings"
	"time"
)

// auditData is a page of the audit trail, filtered.
type auditData struct {
	Actor, Action, Since, Until string
	Actions                     []string
	Entries                     []auditView
	Next                        string
}

// auditActions are the actions officers' changes are recorded as; a
// prefix ending in "." picks all of one kind.
var auditActions = []string{
	"registration.", "registration.create", "registration.update", "registration.delete",
	"account.deactivate", "certificate.revoke", "renewal.move",
}

// consoleTimeLayouts are what the console's time fields (the audit
// filter's, a renewal window's) take: a day, or a time in UTC as
// datetime-local inputs send it, or RFC 3339.
var consoleTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02", time.RFC3339}

func parseConsoleTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range consoleTimeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, apiError(http.StatusBadRequest, "%s must be a day like 2030-01-02 or a UTC time like 2030-01-02T15:04", field)
}

func consoleAudit(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v := r.URL.Query()
	d := auditData{
		Actor:   strings.TrimSpace(v.Get("actor")),
		Action:  strings.TrimSpace(v.Get("action")),
		Since:   strings.TrimSpace(v.Get("since")),
		Until:   strings.TrimSpace(v.Get("until")),
		Actions: auditActions,
	}
	f := auditFilter{Actor: d.Actor, Action: d.Action}
	var err error
	if f.Since, err = parseConsoleTime("since", d.Since); err != nil {
		return err
	}
	if f.Until, err = parseConsoleTime("until", d.Until); err != nil {
		return err
	}
	out, err := q.officer.listAudit(r.Context(), f, pageOf(r))
	if err != nil {
		return err
	}
	d.Entries = out.Audit
	d.Next = q.nextPage(r, out.Next, "audit")
	return q.page(w, "audit", "Audit trail", "audit", d)
}
