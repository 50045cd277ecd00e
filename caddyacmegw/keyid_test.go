package caddyacmegw

import (
	"strings"
	"testing"
)

func TestNewKeyID_NeverLooksLikeAnOption(t *testing.T) {
	for range 5000 {
		if id := newKeyID(); strings.HasPrefix(id, "-") {
			t.Fatalf("key id %q begins with '-'", id)
		}
	}
}

func TestCheckKeyID_RefusesLeadingHyphen(t *testing.T) {
	for kid, ok := range map[string]bool{"-abc": false, "abc-": true, "a_b": true, "": false, "a b": false} {
		if err := checkKeyID(kid); (err == nil) != ok {
			t.Errorf("checkKeyID(%q) = %v, want ok=%v", kid, err, ok)
		}
	}
}
