package integration

import (
	"encoding/json"
	"testing"
)

func TestCaddy_ServesDirectory(t *testing.T) {
	g := startCaddy(t, "storage memory")
	resp, err := g.HTTPClient().Get(g.Directory)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatal(err)
	}
	if dir["newAccount"] == nil || resp.Header.Get("Replay-Nonce") == "" {
		t.Fatalf("directory %v, headers %v", dir, resp.Header)
	}
}
