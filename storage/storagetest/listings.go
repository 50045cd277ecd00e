package storagetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/caddyacmegw/caddyacmegw/storage"
)

// collect pages through a listing with limit from the start and returns
// everything listed. It fails t when a page is larger than limit, when a
// page is empty yet names a next one, or when paging does not end.
func collect[T any](t *testing.T, what string, limit int, list func(cursor string, limit int) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	cursor := ""
	for pages := 1; ; pages++ {
		page, next, err := list(cursor, limit)
		if err != nil {
			t.Fatalf("%s(cursor %q): %v", what, cursor, err)
		}
		if len(page) > limit {
			t.Fatalf("%s(limit %d) returned %d records", what, limit, len(page))
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		if len(page) == 0 {
			t.Fatalf("%s returned an empty page with next %q", what, next)
		}
		if pages > 1000 {
			t.Fatalf("%s does not end", what)
		}
		cursor = next
	}
}

// pageSizes lists with limit and returns the size of each page.
func pageSizes[T any](t *testing.T, what string, limit int, list func(cursor string, limit int) ([]T, string, error)) []int {
	t.Helper()
	var sizes []int
	collect(t, what, limit, func(cursor string, limit int) ([]T, string, error) {
		page, next, err := list(cursor, limit)
		sizes = append(sizes, len(page))
		return page, next, err
	})
	return sizes
}

func ids[T any](records []T, id func(T) string) []string {
	out := make([]string, len(records))
	for i, r := range records {
		out[i] = id(r)
	}
	return out
}

// ours keeps the ids of got that are in want, in got's order, since a
// store shared by several subtests lists their records too.
func ours(got, want []string) []string {
	return slices.DeleteFunc(slices.Clone(got), func(id string) bool { return !slices.Contains(want, id) })
}

func accountID(a *storage.Account) string      { return a.ID }
func certSerial(c *storage.Certificate) string { return c.Serial }
func auditID(e *storage.AuditEntry) string     { return e.ID }

func testListAccounts(t *testing.T, s storage.Store) {
	ctx := t.Context()
	contact := "mailto:" + newID(t) + "@example.com"
	reg := newID(t)
	// Creation times run against creation order, two of them tied, so
	// that a backend listing in insertion or id order fails.
	offsets := []time.Duration{5, 3, 4, 1, 1, 2}
	var all []*storage.Account
	for i, off := range offsets {
		a := newAccount(t)
		a.CreatedAt = base.Add(off * time.Second)
		if i%2 == 0 {
			a.Contact = append(a.Contact, contact)
		}
		if i < 3 {
			a.RegistrationID = reg
		}
		if i == 1 || i == 4 {
			a.Status = storage.StatusDeactivated
		}
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b *storage.Account) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	want := func(keep func(a *storage.Account) bool) []string {
		var out []string
		for _, a := range all {
			if keep(a) {
				out = append(out, a.ID)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		f      storage.AccountFilter
		want   []string
		shared bool // the filter matches other subtests' accounts too
	}{
		{"all", storage.AccountFilter{}, want(func(*storage.Account) bool { return true }), true},
		{"registration", storage.AccountFilter{RegistrationID: reg}, want(func(a *storage.Account) bool { return a.RegistrationID == reg }), false},
		{"contact", storage.AccountFilter{Contact: contact}, want(func(a *storage.Account) bool { return slices.Contains(a.Contact, contact) }), false},
		{"status", storage.AccountFilter{Status: storage.StatusDeactivated}, want(func(a *storage.Account) bool { return a.Status == storage.StatusDeactivated }), true},
		{"all fields", storage.AccountFilter{RegistrationID: reg, Contact: contact, Status: storage.StatusValid}, want(func(a *storage.Account) bool {
			return a.RegistrationID == reg && slices.Contains(a.Contact, contact) && a.Status == storage.StatusValid
		}), false},
		{"no match", storage.AccountFilter{RegistrationID: newID(t)}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 100} {
				got := ids(collect(t, "ListAccounts", limit, func(cursor string, limit int) ([]*storage.Account, string, error) {
					return s.ListAccounts(ctx, tc.f, cursor, limit)
				}), accountID)
				if tc.shared {
					got = ours(got, tc.want)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("ListAccounts(%+v, limit %d) = %v, want %v (creation order)", tc.f, limit, got, tc.want)
				}
			}
		})
	}

	// Only matching accounts count: the filter's last match ends the
	// listing although unmatched accounts follow it.
	sizes := pageSizes(t, "ListAccounts", 2, func(cursor string, limit int) ([]*storage.Account, string, error) {
		return s.ListAccounts(ctx, storage.AccountFilter{RegistrationID: reg}, cursor, limit)
	})
	if !slices.Equal(sizes, []int{2, 1}) {
		t.Errorf("ListAccounts(3 matches, limit 2) page sizes = %v, want [2 1]", sizes)
	}
	sizes = pageSizes(t, "ListAccounts", 3, func(cursor string, limit int) ([]*storage.Account, string, error) {
		return s.ListAccounts(ctx, storage.AccountFilter{Contact: contact}, cursor, limit)
	})
	if !slices.Equal(sizes, []int{3}) {
		t.Errorf("ListAccounts(3 matches, limit 3) page sizes = %v, want [3]", sizes)
	}

	got, _, err := s.ListAccounts(ctx, storage.AccountFilter{RegistrationID: reg}, "", 100)
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	for _, a := range got {
		i := slices.IndexFunc(all, func(b *storage.Account) bool { return b.ID == a.ID })
		mustEqual(t, "ListAccounts record", all[i], a)
		a.Contact[0] = "mailto:mallory@example.com"
		a.KeyJWK[0] = '['
		mustEqual(t, "GetAccount after changing a listed record", all[i], getAccount(t, s, a.ID))
	}
}

func testListCertificates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct, other := createAccount(t, s), createAccount(t, s)
	name := newID(t) + ".example.com"
	offsets := []time.Duration{4, 2, 3, 1, 1}
	var all []*storage.Certificate
	for i, off := range offsets {
		owner := acct
		if i == 2 {
			owner = other
		}
		names := []string{"www.example.com"}
		if i != 1 {
			names = append(names, name)
		}
		o, _ := createOrder(t, s, owner.ID, names...)
		c := newCertificate(t, o)
		c.IssuedAt = base.Add(off * time.Second)
		if err := s.StoreCertificate(ctx, c, finalized(o, c)); err != nil {
			t.Fatalf("StoreCertificate: %v", err)
		}
		if i == 0 || i == 3 {
			c.Status, c.RevokedAt, c.RevocationReason = storage.StatusRevoked, base.Add(time.Hour), 4
			if err := s.UpdateCertificate(ctx, c); err != nil {
				t.Fatalf("UpdateCertificate: %v", err)
			}
		}
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *storage.Certificate) int {
		return cmp.Or(a.IssuedAt.Compare(b.IssuedAt), cmp.Compare(a.Serial, b.Serial))
	})
	want := func(keep func(c *storage.Certificate) bool) []string {
		var out []string
		for _, c := range all {
			if keep(c) {
				out = append(out, c.Serial)
			}
		}
		return out
	}
	one := all[1].Serial
	tests := []struct {
		name   string
		f      storage.CertificateFilter
		want   []string
		shared bool
	}{
		{"all", storage.CertificateFilter{}, want(func(*storage.Certificate) bool { return true }), true},
		{"account", storage.CertificateFilter{AccountID: acct.ID}, want(func(c *storage.Certificate) bool { return c.AccountID == acct.ID }), false},
		{"name", storage.CertificateFilter{Name: name}, want(func(c *storage.Certificate) bool { return slices.Contains(c.Names, name) }), false},
		{"serial", storage.CertificateFilter{Serial: one}, []string{one}, false},
		{"status", storage.CertificateFilter{Status: storage.StatusRevoked}, want(func(c *storage.Certificate) bool { return c.Status == storage.StatusRevoked }), true},
		{"account and status", storage.CertificateFilter{AccountID: acct.ID, Status: storage.StatusValid}, want(func(c *storage.Certificate) bool {
			return c.AccountID == acct.ID && c.Status == storage.StatusValid
		}), false},
		{"all fields", storage.CertificateFilter{AccountID: acct.ID, Name: name, Serial: one, Status: all[1].Status}, want(func(c *storage.Certificate) bool {
			return c.Serial == one && c.AccountID == acct.ID && slices.Contains(c.Names, name)
		}), false},
		{"no match", storage.CertificateFilter{Serial: newSerial(t)}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 100} {
				got := ids(collect(t, "ListCertificates", limit, func(cursor string, limit int) ([]*storage.Certificate, string, error) {
					return s.ListCertificates(ctx, tc.f, cursor, limit)
				}), certSerial)
				if tc.shared {
					got = ours(got, tc.want)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("ListCertificates(%+v, limit %d) = %v, want %v (issuance order)", tc.f, limit, got, tc.want)
				}
			}
		})
	}

	sizes := pageSizes(t, "ListCertificates", 2, func(cursor string, limit int) ([]*storage.Certificate, string, error) {
		return s.ListCertificates(ctx, storage.CertificateFilter{Name: name}, cursor, limit)
	})
	if !slices.Equal(sizes, []int{2, 2}) {
		t.Errorf("ListCertificates(4 matches, limit 2) page sizes = %v, want [2 2]", sizes)
	}

	got, _, err := s.ListCertificates(ctx, storage.CertificateFilter{AccountID: acct.ID}, "", 100)
	if err != nil {
		t.Fatalf("ListCertificates: %v", err)
	}
	for _, c := range got {
		i := slices.IndexFunc(all, func(d *storage.Certificate) bool { return d.Serial == c.Serial })
		mustEqual(t, "ListCertificates record", all[i], c)
		c.Names[0] = "evil.example"
		c.ChainPEM[0] = 'X'
		mustEqual(t, "GetCertificate after changing a listed record", all[i], getCertificate(t, s, c.Serial))
	}
}
