package caddyacmegw

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// A registration may allow only profiles the gateway has, on create and on
// edit; the listing shows them ([] for all), and the audit trail records
// each change, from and to.
func TestAdmin_RegistrationProfiles(t *testing.T) {
	e := newAdminEnv(t)
	e.must(http.StatusBadRequest, http.MethodPost, "registrations", map[string]any{"profiles": []string{"short"}}, nil)

	e.g.h.Profiles = []ProfileConfig{{Name: "short"}, {Name: "long"}}
	status, body := e.do(http.MethodPost, "registrations", map[string]any{"profiles": []string{"medium"}})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "short, long") {
		t.Fatalf("create with an unknown profile: %d %s, want 400 naming the gateway's", status, body)
	}
	reg := e.createRegistration(map[string]any{"key_id": "restricted", "profiles": []string{"short", "short"}})
	if !slices.Equal(reg.Profiles, []string{"short"}) {
		t.Fatalf("created with profiles %q, want [short]", reg.Profiles)
	}
	if got := e.g.registration("restricted").Profiles; !slices.Equal(got, []string{"short"}) {
		t.Fatalf("stored profiles %q", got)
	}
	e.must(http.StatusBadRequest, http.MethodPatch, "registrations/restricted", map[string]any{"profiles": []string{"medium"}}, nil)
	e.must(http.StatusBadRequest, http.MethodPatch, "registrations/restricted", map[string]any{"profiles": "short"}, nil)
	var v registrationView
	e.must(http.StatusOK, http.MethodPatch, "registrations/restricted", map[string]any{"profiles": []string{"long", "short"}}, &v, officerHeader, "carol")
	if !slices.Equal(v.Profiles, []string{"long", "short"}) {
		t.Fatalf("profiles after the edit %q", v.Profiles)
	}
	e.must(http.StatusOK, http.MethodPatch, "registrations/restricted", map[string]any{"profiles": []string{}}, &v)
	if v.Profiles == nil || len(v.Profiles) != 0 {
		t.Fatalf("profiles after clearing %#v, want []", v.Profiles)
	}
	var list struct {
		Registrations []registrationView `json:"registrations"`
	}
	e.must(http.StatusOK, http.MethodGet, "registrations", nil, &list)
	if len(list.Registrations) != 1 || list.Registrations[0].Profiles == nil {
		t.Fatalf("listing %+v, want the registration with its profiles", list.Registrations)
	}

	entries := e.auditEntries()
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want create and two updates", len(entries))
	}
	var created struct {
		Profiles []string `json:"profiles"`
	}
	if err := json.Unmarshal(entries[0].Detail, &created); err != nil || !slices.Equal(created.Profiles, []string{"short"}) {
		t.Errorf("create detail %s, want profiles [short]", entries[0].Detail)
	}
	type change struct{ From, To []string }
	for i, want := range []change{{[]string{"short"}, []string{"long", "short"}}, {[]string{"long", "short"}, []string{}}} {
		var detail struct {
			Changes map[string]change `json:"changes"`
		}
		err := json.Unmarshal(entries[i+1].Detail, &detail)
		got := detail.Changes["profiles"]
		if err != nil || !slices.Equal(got.From, want.From) || !slices.Equal(got.To, want.To) || got.To == nil {
			t.Errorf("update %d detail %s, want profiles from %q to %q", i+1, entries[i+1].Detail, want.From, want.To)
		}
	}
	if entries[1].Actor != "carol" {
		t.Errorf("update by %q, want carol", entries[1].Actor)
	}
}

// --profiles on register and edit; show and the listing say which
// profiles a registration allows, "all" when it names none.
func TestCommand_RegistrationProfiles(t *testing.T) {
	e := newAdminEnv(t)
	e.g.h.Profiles = []ProfileConfig{{Name: "short"}, {Name: "long"}}
	e.mustCLI("register", "--domains", "example.com", "--key-id", "kid-p", "--profiles", "short")
	contains(t, "registrations", e.mustCLI("registrations"), "PROFILES", "kid-p", "short")
	contains(t, "show", e.mustCLI("registrations", "show", "kid-p"), "profiles:         short")
	out := e.mustCLI("registrations", "edit", "kid-p", "--profiles", "short,long")
	contains(t, "edit", out, "profiles:         short, long")
	if got := e.g.registration("kid-p").Profiles; !slices.Equal(got, []string{"short", "long"}) {
		t.Fatalf("stored profiles %q after the edit", got)
	}
	contains(t, "edit to all", e.mustCLI("registrations", "edit", "kid-p", "--profiles", ""), "profiles:         all")
	if got := e.g.registration("kid-p").Profiles; len(got) != 0 {
		t.Fatalf("stored profiles %q after allowing all", got)
	}
}

// An officer sees the profile a certificate was issued under, in the API
// and in `certificates show`.
func TestCommand_CertificateShowsItsProfile(t *testing.T) {
	e := newAdminEnv(t)
	acct, _ := e.g.mustAccount("", nil)
	serial := e.g.issue(acct, "www.example.com").SerialNumber.Text(16)
	if out := e.mustCLI("certificates", "show", serial); strings.Contains(out, "profile:") {
		t.Fatalf("a certificate under no profile shows one:\n%s", out)
	}
	cert, err := e.g.store.GetCertificate(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	cert.Profile = "short"
	if err := e.g.store.UpdateCertificate(context.Background(), cert); err != nil {
		t.Fatal(err)
	}
	contains(t, "show", e.mustCLI("certificates", "show", serial), "profile:     short")
	var v certificateView
	e.must(http.StatusOK, http.MethodGet, "certificates/"+serial, nil, &v)
	if v.Profile != "short" {
		t.Fatalf("the API shows profile %q, want short", v.Profile)
	}
}
