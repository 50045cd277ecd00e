package cm_test

import (
	"math/big"
	"testing"

	"github.com/caddyacmegw/caddyacmegw/cm"
	"github.com/caddyacmegw/caddyacmegw/cm/cmtest"
)

// issueOne issues a certificate through c and returns its serial.
func issueOne(t *testing.T, c *cm.Client, name string) *big.Int {
	t.Helper()
	res, err := c.Issue(t.Context(), newCSR(t, name), "")
	if err != nil {
		t.Fatal(err)
	}
	return res.Chain[0].SerialNumber
}

func TestRevoke_SignedAndRecorded(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{})
	c := newClient(t, writeConfig(t, s, goodOfficer))
	serial := issueOne(t, c, "c.example.com")
	s.FailNext(1, 503) // the unsigned request only asks for data to sign: retried
	if err := c.Revoke(t.Context(), serial, 4); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if reason, ok := s.Revocation(cm.SerialHex(serial)); !ok || reason != 4 {
		t.Errorf("Revocation = %d, %v; want 4, true", reason, ok)
	}
	if got := s.Counts(); got.Revoked != 1 || len(s.Signatures()) != 2 {
		t.Errorf("counts = %+v, %d signatures; want one revocation, signed", got, len(s.Signatures()))
	}
	// Revoked already: CM refuses, and its search confirms the outcome.
	if err := c.Revoke(t.Context(), serial, 1); err != nil {
		t.Errorf("second Revoke = %v, want confirmed by search", err)
	}
	if err := c.Revoke(t.Context(), big.NewInt(0xabcdef), 0); err == nil {
		t.Error("Revoke of an unknown serial succeeded")
	}
}

// The outcome of a revocation whose answer was lost is read from CM's
// search: revoked when CM carried it out, an error when it did not.
func TestRevoke_LostAnswerIsDecidedBySearch(t *testing.T) {
	for _, afterWrite := range []bool{true, false} {
		name := map[bool]string{true: "CarriedOut", false: "NotCarriedOut"}[afterWrite]
		t.Run(name, func(t *testing.T) {
			s := cmtest.New(t, cmtest.Options{})
			c := newClient(t, writeConfig(t, s, goodOfficer))
			serial := issueOne(t, c, "d.example.com")
			s.FaultSigned(cmtest.SignedFault{N: 1, AfterWrite: afterWrite})
			err := c.Revoke(t.Context(), serial, 1)
			_, revoked := s.Revocation(cm.SerialHex(serial))
			if (err == nil) != afterWrite || revoked != afterWrite {
				t.Fatalf("Revoke = %v with CM's record revoked=%v; want confirmed only when carried out", err, revoked)
			}
			if s.Counts().Requests[cmtest.RouteSearch] == 0 {
				t.Fatal("the outcome was not searched")
			}
		})
	}
}

// With server signing a revocation is one request.
func TestRevoke_ServerSigning(t *testing.T) {
	s := cmtest.New(t, cmtest.Options{Procedures: map[string]cmtest.Procedure{cmtest.DefaultProcedure: {VRO: true}}})
	cfg := writeConfig(t, s, goodOfficer)
	cfg.Signing = cm.SigningServer
	c := newClient(t, cfg)
	serial := issueOne(t, c, "v.example.com")
	if err := c.Revoke(t.Context(), serial, 5); err != nil {
		t.Fatal(err)
	}
	if got := s.Counts(); got.Revoked != 1 || got.Requests[cmtest.RouteRevoke] != 1 {
		t.Errorf("counts = %+v", got)
	}
}
