package gateway

import "testing"

// Two Servers on one PostgreSQL: an order placed at the second while the
// first is storing its own, both replacing one certificate, does not
// make two replacements.
func TestReplaces_OnPostgresOrderBeingStoredAtOneServerStillClaimsOnce(t *testing.T) {
	g, serving := serversOnPostgres(t, Config{})
	checkOneOfTwoRacingOrdersWins(t, g, g.pgStores[0], func() { serving.Store(1) })
}
