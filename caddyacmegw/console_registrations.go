package caddyacmegw

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// registrationsData is a page of registrations, narrowed by a search.
type registrationsData struct {
	Search        string
	Registrations []registrationView
	Next          string
}

// consoleRegistrations lists registrations, or those a search finds.
func consoleRegistrations(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	search := strings.TrimSpace(r.URL.Query().Get("q"))
	out, err := q.officer.listRegistrations(r.Context(), search, pageOf(r))
	if err != nil {
		return err
	}
	d := registrationsData{Search: search, Registrations: out.Registrations, Next: q.nextPage(r, out.Next, "registrations")}
	return q.page(w, "registrations", "Registrations", "registrations", d)
}

// consoleNewRegistration is the form for a new registration, with a
// one-use nonce by which the same form sent again is recognised.
func consoleNewRegistration(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return q.page(w, "registration_new", "New registration", "registrations", base64.RawURLEncoding.EncodeToString(b))
}

// createdData is the one page that shows a registration's HMAC key, with
// the command lines that use it.
type createdData struct {
	Registration registrationView
	Directory    string
	Certbot      string
	Lego         string
	AcmeSh       string
}

// consoleCreateRegistration creates a registration once for each form:
// the form's nonce sent again (as refreshing the page that shows the key
// does) gets a page saying it was created, rather than a second one with
// a key of its own.
func consoleCreateRegistration(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	f := r.PostForm
	once := f.Get("once")
	if once != "" {
		if kid, fresh := q.console.once.claim(once); !fresh {
			return q.pageStatus(w, http.StatusConflict, "registration_repeated", "Registration already created", "registrations", kid)
		}
	}
	v, err := q.officer.createRegistration(r.Context(), createRegistrationRequest{
		KeyID:          strings.TrimSpace(f.Get("key_id")),
		Description:    f.Get("description"),
		AllowedDomains: fields(f.Get("allowed_domains")),
		Emails:         fields(f.Get("emails")),
		Expires:        strings.TrimSpace(f.Get("expires")),
		ExpiresIn:      strings.TrimSpace(f.Get("expires_in")),
		Procedure:      strings.TrimSpace(f.Get("procedure")),
		Profiles:       fields(f.Get("profiles")),
	})
	if once != "" {
		if err != nil {
			q.console.once.release(once)
		} else {
			q.console.once.done(once, v.KeyID)
		}
	}
	if err != nil {
		return err
	}
	// Without base_url, the gateway's host is taken to be the one this
	// console is reached at, as when both are on one site (set base_url
	// when they are not).
	dir := q.officer.h.directoryURLFor(r.Host)
	// The placeholders stay unquoted, for the officer to replace.
	words := bindingWords(dir, v.KeyID, v.HMACKey)
	d := createdData{
		Registration: v,
		Directory:    dir,
		Certbot:      shellJoin(words.certbot) + " -d <name>",
		Lego:         shellJoin(words.lego) + " --email <you@example.com> --domains <name> run",
		AcmeSh:       shellJoin(words.acmeSh),
	}
	return q.page(w, "registration_created", "Registration created", "registrations", d)
}

// fields splits a form's list, one entry a line or separated by spaces or
// commas.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// registrationData is one registration with its renewal form.
type registrationData struct {
	registrationView
	Renewal renewalForm
}

func consoleRegistration(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v, err := q.officer.getRegistration(r.Context(), r.PathValue("kid"))
	if err != nil {
		return err
	}
	form, err := q.renewalForm(r.Context(), storage.RenewalScope{Kind: storage.RenewalScopeRegistration, Value: v.KeyID}, "registrations", v.KeyID)
	if err != nil {
		return err
	}
	return q.page(w, "registration", "Registration "+v.KeyID, "registrations", registrationData{v, form})
}

// consoleUpdateRegistration changes what the edit form holds; an empty
// expiry clears it.
func consoleUpdateRegistration(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	f := r.PostForm
	desc, proc := f.Get("description"), strings.TrimSpace(f.Get("procedure"))
	domains, emails, profiles := fields(f.Get("allowed_domains")), fields(f.Get("emails")), fields(f.Get("profiles"))
	kid := r.PathValue("kid")
	p := &registrationPatch{description: &desc, procedure: &proc, allowedDomains: &domains, emails: &emails, profiles: &profiles}
	// An expiry left as the form showed it stays, even one that passed.
	if expires := strings.TrimSpace(f.Get("expires")); expires != f.Get("expires_shown") {
		p.expires = &expires
	}
	if _, err := q.officer.updateRegistration(r.Context(), kid, p); err != nil {
		return err
	}
	return seeOther(w, r, q.link(nil, "registrations", kid))
}

// consoleRegistrationStatus disables or enables a registration.
func consoleRegistrationStatus(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	status := r.PostForm.Get("status")
	kid := r.PathValue("kid")
	if _, err := q.officer.updateRegistration(r.Context(), kid, &registrationPatch{status: &status}); err != nil {
		return err
	}
	return seeOther(w, r, q.link(nil, "registrations", kid))
}

func consoleConfirmDeleteRegistration(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	v, err := q.officer.getRegistration(r.Context(), r.PathValue("kid"))
	if err != nil {
		return err
	}
	question := fmt.Sprintf("Delete registration %s? Its key stops working for new accounts.", v.KeyID)
	if v.AccountID != "" {
		question += fmt.Sprintf(" Account %s, made with it, stays.", v.AccountID)
	}
	return q.confirm(w, "Delete registration "+v.KeyID, "registrations", confirmData{
		Question: question,
		Action:   q.link(nil, "registrations", v.KeyID, "delete"),
		Button:   "Delete registration",
		Cancel:   q.link(nil, "registrations", v.KeyID),
	})
}

func consoleDeleteRegistration(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	if err := q.officer.deleteRegistration(r.Context(), r.PathValue("kid")); err != nil {
		return err
	}
	return seeOther(w, r, q.link(nil, "registrations"))
}
