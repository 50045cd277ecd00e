package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEABs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "eab.txt")
	if err := os.WriteFile(file, []byte("kid-1 AQID\nkid-2 BAUG\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		file, kid, key string
		workers        int
		wantN          int
		wantErr        string
	}{
		{"none", "", "", "", 50, 0, ""},
		{"file with one per worker", file, "", "", 2, 2, ""},
		{"file with too few", file, "", "", 3, 0, "each worker needs its own"},
		{"flags for one worker", "", "kid", "AQID", 1, 1, ""},
		{"flags for many workers", "", "kid", "AQID", 2, 0, "-c 1"},
		{"file and flags", file, "kid", "AQID", 1, 0, "exclude"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eabs(tc.file, tc.kid, tc.key, tc.workers)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.wantN {
				t.Fatalf("got %d bindings, %v; want %d", len(got), err, tc.wantN)
			}
		})
	}
}

func TestARecord(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"192.0.2.7:5002", "192.0.2.7"},
		{"0.0.0.0:5002", "127.0.0.1"},
		{":5002", "127.0.0.1"},
		{"[::1]:5002", "127.0.0.1"},
		{"localhost:5002", "127.0.0.1"},
	}
	for _, tc := range tests {
		if got := aRecord(tc.addr); !got.Equal(net.ParseIP(tc.want)) {
			t.Errorf("aRecord(%q) = %v, want %s", tc.addr, got, tc.want)
		}
	}
}

func TestRun_UsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-directory", "https://ca.test/dir", "-c", "0"},
		{"-directory", "https://ca.test/dir", "-no-such-flag"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}
