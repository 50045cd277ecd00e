package caddyacmegw

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/caddyacmegw/caddyacmegw/gateway"
	"github.com/caddyacmegw/caddyacmegw/storage"
)

// overviewScanLimit bounds the records the overview reads of each kind,
// so that a large gateway's overview stays quick; counts that reach it
// are shown as "at least".
const overviewScanLimit = 20000

// expiringDays is how near its end a valid certificate counts, on the
// overview, as expiring.
const expiringDays = 30

// overviewData is the overview: counts and three charts.
type overviewData struct {
	Counts          []overviewCount
	Issued          barChart
	Expiring        barChart
	Outcomes        barChart
	OutcomesSince   time.Time
	CountedToLimits bool
}

type overviewCount struct {
	Label   string
	N       int
	AtLeast bool
	Link    string
}

func consoleOverview(w http.ResponseWriter, r *http.Request, q *consoleRequest) error {
	ctx, o := r.Context(), q.officer
	now := o.h.now().UTC()
	var d overviewData

	accounts, moreAccounts, err := countAll(ctx, func(ctx context.Context, cursor string) (int, string, error) {
		a, next, err := o.h.store.ListAccounts(ctx, storage.AccountFilter{}, cursor, maxPageLimit)
		return len(a), next, err
	})
	if err != nil {
		return storeError(err, "accounts")
	}
	regs, moreRegs, err := countAll(ctx, func(ctx context.Context, cursor string) (int, string, error) {
		r, next, err := o.h.store.ListRegistrations(ctx, cursor, maxPageLimit)
		return len(r), next, err
	})
	if err != nil {
		return storeError(err, "registrations")
	}

	// Certificates: one pass for the counts and the two charts by date.
	today := now.Truncate(24 * time.Hour)
	issuedPerDay := make([]int, 30)
	expiringPerWeek := make([]int, 8)
	var valid, expiring, revoked int
	moreCerts, err := forEachCertificate(ctx, o.h.store, func(c *storage.Certificate) {
		if day := int(today.Sub(c.IssuedAt.UTC().Truncate(24*time.Hour)) / (24 * time.Hour)); day >= 0 && day < len(issuedPerDay) {
			issuedPerDay[len(issuedPerDay)-1-day]++
		}
		switch {
		case c.Status == storage.StatusRevoked:
			revoked++
		case now.Before(c.NotAfter):
			valid++
			left := c.NotAfter.Sub(now)
			if left < expiringDays*24*time.Hour {
				expiring++
			}
			if week := int(left / (7 * 24 * time.Hour)); week < len(expiringPerWeek) {
				expiringPerWeek[week]++
			}
		}
	})
	if err != nil {
		return storeError(err, "certificates")
	}
	waiting, err := o.listOrders(ctx, "", storage.StatusProcessing, page{limit: maxPageLimit})
	if err != nil {
		return err
	}

	d.Counts = []overviewCount{
		{"Accounts", accounts, moreAccounts, q.link(nil, "accounts")},
		{"Registrations", regs, moreRegs, q.link(nil, "registrations")},
		{"Valid certificates", valid, moreCerts, q.link(map[string][]string{"status": {storage.StatusValid}}, "certificates")},
		{fmt.Sprintf("Expiring within %d days", expiringDays), expiring, moreCerts, ""},
		{"Revoked certificates", revoked, moreCerts, q.link(map[string][]string{"status": {storage.StatusRevoked}}, "certificates")},
		{"Orders waiting on the CA", len(waiting.Orders), waiting.Next != "", ""},
	}
	d.CountedToLimits = moreAccounts || moreRegs || moreCerts

	var dayLabels []string
	for i := range issuedPerDay {
		dayLabels = append(dayLabels, today.AddDate(0, 0, i-len(issuedPerDay)+1).Format("01-02"))
	}
	d.Issued = newBarChart("Certificates issued per day, last 30 days (UTC)", dayLabels, issuedPerDay)
	var weekLabels []string
	for i := range expiringPerWeek {
		weekLabels = append(weekLabels, fmt.Sprintf("week %d", i+1))
	}
	d.Expiring = newBarChart("Valid certificates expiring, by week from now", weekLabels, expiringPerWeek)

	since, tally := o.h.validations.snapshot()
	d.OutcomesSince = since
	var outcomeLabels []string
	var outcomeCounts []int
	for _, k := range slices.Sorted(maps.Keys(tally)) {
		outcomeLabels = append(outcomeLabels, k)
		outcomeCounts = append(outcomeCounts, tally[k])
	}
	d.Outcomes = newBarChart("Validation outcomes by problem type", outcomeLabels, outcomeCounts)
	return q.page(w, "overview", "Overview", "overview", d)
}

// countAll counts a listing's records through its pages, up to
// overviewScanLimit; more tells that it stopped there.
func countAll(ctx context.Context, list func(context.Context, string) (int, string, error)) (n int, more bool, err error) {
	cursor := ""
	for {
		got, next, err := list(ctx, cursor)
		if err != nil {
			return 0, false, err
		}
		n += got
		if next == "" {
			return n, false, nil
		}
		if n >= overviewScanLimit {
			return n, true, nil
		}
		cursor = next
	}
}

// forEachCertificate calls f on the stored certificates, up to
// overviewScanLimit; more tells that it stopped there.
func forEachCertificate(ctx context.Context, store storage.Store, f func(*storage.Certificate)) (more bool, err error) {
	_, more, err = countAll(ctx, func(ctx context.Context, cursor string) (int, string, error) {
		certs, next, err := store.ListCertificates(ctx, storage.CertificateFilter{}, cursor, maxPageLimit)
		for _, c := range certs {
			f(c)
		}
		return len(certs), next, err
	})
	return more, err
}

// validationTally counts finished validations by outcome (the problem
// type, or "valid") since the handler was provisioned, for the overview:
// storage keeps a challenge's error only on its authorization, which no
// listing reaches. It passes every count on to the metrics it wraps.
type validationTally struct {
	gateway.Metrics
	since time.Time

	mu        sync.Mutex
	byOutcome map[string]int
}

func newValidationTally(m gateway.Metrics, now time.Time) *validationTally {
	if m == nil {
		m = gateway.NoMetrics{}
	}
	return &validationTally{Metrics: m, since: now.UTC(), byOutcome: map[string]int{}}
}

// Validation implements gateway.Metrics.
func (t *validationTally) Validation(challengeType string, problem gateway.ProblemType) {
	outcome := string(problem)
	if outcome == "" {
		outcome = "valid"
	}
	t.mu.Lock()
	t.byOutcome[outcome]++
	t.mu.Unlock()
	t.Metrics.Validation(challengeType, problem)
}

// snapshot is when counting began and a copy of the counts.
func (t *validationTally) snapshot() (time.Time, map[string]int) {
	if t == nil {
		return time.Time{}, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.since, maps.Clone(t.byOutcome)
}

var _ gateway.Metrics = (*validationTally)(nil)
