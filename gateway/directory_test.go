package gateway

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestDirectory_MetaShowsCAAIdentitiesWhenSet(t *testing.T) {
	tests := []struct {
		name string
		ids  []string
	}{
		{"set", []string{"ca.example.net", "ca.example.org"}},
		{"unset", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t)
			g.h.cfg.CAAIdentities = tt.ids
			resp, err := g.srv.Client().Get(g.base + PathDirectory)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var dir struct {
				Meta map[string]json.RawMessage `json:"meta"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
				t.Fatal(err)
			}
			raw, ok := dir.Meta["caaIdentities"]
			if tt.ids == nil {
				if ok {
					t.Fatalf("meta has caaIdentities %s without caa_identities", raw)
				}
				return
			}
			var got []string
			if err := json.Unmarshal(raw, &got); err != nil || !slices.Equal(got, tt.ids) {
				t.Fatalf("meta caaIdentities %s (%v), want %v", raw, err, tt.ids)
			}
		})
	}
}
