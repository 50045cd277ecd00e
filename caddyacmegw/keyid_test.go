package caddyacmegw

import "testing"

func TestCheckKeyID_RefusesLeadingHyphen(t *testing.T) {
	for kid, ok := range map[string]bool{"-abc": false, "abc-": true, "a_b": true, "": false, "a b": false} {
		if err := checkKeyID(kid); (err == nil) != ok {
			t.Errorf("checkKeyID(%q) = %v, want ok=%v", kid, err, ok)
		}
	}
}
