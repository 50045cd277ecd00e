package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowFlood is a validator that takes slowFor over every name starting
// with "flood", as a client's server that answers slowly would make it,
// and hands every name on to the harness's validator.
type slowFlood struct {
	Validator
	slowFor time.Duration
}

func (v slowFlood) HTTP01(ctx context.Context, domain, token, keyAuth string) error {
	if strings.HasPrefix(domain, "flood") {
		select {
		case <-time.After(v.slowFor):
		case <-ctx.Done():
		}
	}
	return v.Validator.HTTP01(ctx, domain, token, keyAuth)
}

// Fifty accounts flood orders and slow validations while ten honest
// accounts obtain and renew their certificates: every honest issuance
// succeeds, and the flooders are refused with rateLimited and Retry-After
// once they take more than their share, at newOrder (orders per account)
// and at the challenge (their place in a full validation queue).
func TestLoad_FloodersAreLimitedHonestClientsRenew(t *testing.T) {
	g := newGateway(t)
	g.h.cfg.Limits.OrdersPerAccount = Limit{Count: 5, Window: time.Hour}
	// Sixty accounts from one address: as if from sixty (accounts per
	// address have their own test).
	g.h.cfg.Limits.AccountsPerIP = Limit{Count: -1}
	g.h.validator = slowFlood{Validator: g.valid, slowFor: time.Second}

	var orderRefusals, challengeRefusals atomic.Int64
	floodErrs := make(chan error, 50)
	var flood sync.WaitGroup
	stop := make(chan struct{})
	for i := range 50 {
		c := g.newClient()
		c.register()
		flood.Add(1)
		go func() {
			defer flood.Done()
			floodErrs <- floodUntil(stop, c, i, &orderRefusals, &challengeRefusals)
		}()
	}
	t.Run("honest", func(t *testing.T) {
		for i := range 10 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				gt := *g
				gt.t = t
				c := gt.newClient()
				c.patience = 30 * time.Second // as real clients poll, not the harness's 2s
				c.register()
				name := fmt.Sprintf("honest%d.example", i)
				c.issue(name)
				c.issue(name) // the renewal
			})
		}
	})
	close(stop)
	flood.Wait()
	close(floodErrs)
	for err := range floodErrs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("flooders refused: %d orders, %d challenges", orderRefusals.Load(), challengeRefusals.Load())
	if orderRefusals.Load() != 50*5 {
		t.Errorf("%d orders refused, want the 250 over the limit", orderRefusals.Load())
	}
	if challengeRefusals.Load() == 0 {
		t.Error("no flooder was refused a place in the validation queue")
	}
}

// floodUntil places ten orders for account c, asks for validation of
// each it gets, and asks again, and again, until stop, so that the
// validation queue stays as full as the flooders can make it. It counts
// the refusals, each of which must be rateLimited with a Retry-After.
func floodUntil(stop <-chan struct{}, c *client, i int, orderRefusals, challengeRefusals *atomic.Int64) error {
	var challenges []string
	for j := range 10 {
		r := c.post(c.g.base+pathNewOrder, map[string]any{"identifiers": dnsIDs(fmt.Sprintf("flood%d-%d.example", i, j))})
		if r.status == http.StatusTooManyRequests {
			orderRefusals.Add(1)
			if err := floodRefusal(r); err != nil {
				return err
			}
			continue
		}
		var o orderBody
		if r.status != http.StatusCreated || r.json(&o) != nil {
			return fmt.Errorf("newOrder: %d %s", r.status, r.body)
		}
		var a authzBody
		if err := c.post(o.Authorizations[0], nil).json(&a); err != nil {
			return err
		}
		challenges = append(challenges, a.Challenges[0].URL)
	}
	for {
		for _, url := range challenges {
			select {
			case <-stop:
				return nil
			default:
			}
			if r := c.post(url, map[string]any{}); r.status == http.StatusTooManyRequests {
				challengeRefusals.Add(1)
				if err := floodRefusal(r); err != nil {
					return err
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// floodRefusal checks that r is rateLimited with a Retry-After.
func floodRefusal(r *reply) error {
	if r.problemType() != ProblemRateLimited.URN() {
		return fmt.Errorf("429 with %s", r.body)
	}
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
		return fmt.Errorf("rateLimited without a Retry-After: %q", r.header.Get("Retry-After"))
	}
	return nil
}
