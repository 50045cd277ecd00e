package gateway

import (
	"strings"
	"testing"
)

// Account, order and key ids are arguments of the officers' command line;
// one beginning with "-" would read as a flag there.
func TestNewID_NeverLooksLikeAnOption(t *testing.T) {
	seen := make(map[string]bool)
	for range 5000 {
		id := NewID()
		if strings.HasPrefix(id, "-") || len(id) != 22 || seen[id] {
			t.Fatalf("id %q: begins with '-', is not 22 characters, or came twice", id)
		}
		seen[id] = true
	}
}
