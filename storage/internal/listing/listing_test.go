package listing

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

func TestKey_SortsByTimeThenIDAndClampsOutOfRangeTimes(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	keys := []string{
		Key(time.Time{}, "z"), // before 1970: clamped to 0
		Key(t0, "a"),
		Key(t0, "b"),
		Key(t0.Add(time.Nanosecond), "a"),
		Key(time.Unix(math.MaxInt64/int64(time.Second)+1, 0), "a"), // past UnixNano: clamped
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("keys not in creation order: %q", keys)
	}
	if keys[0] != "0000000000000000000.z" {
		t.Errorf("zero time key %q", keys[0])
	}
	for _, k := range keys {
		if id, ok := ID(k); !ok || id == "" {
			t.Errorf("ID(%q) = %q, %t", k, id, ok)
		}
	}
	for _, k := range []string{"", "backup~", "0000000000000000000", "00000000000000000001.a"} {
		if _, ok := ID(k); ok {
			t.Errorf("ID(%q) took it for a key", k)
		}
	}
}

func self(s string) string { return s }

func TestPage(t *testing.T) {
	sorted := []string{"a", "b", "c", "d"}
	tests := []struct {
		cursor   string
		limit    int
		want     []string
		wantNext string
	}{
		{"", 2, []string{"a", "b"}, "b"},
		{"b", 2, []string{"c", "d"}, ""},
		{"bb", 1, []string{"c"}, "c"},
		{"d", 2, []string{}, ""},
	}
	for _, tc := range tests {
		page, next := Page(sorted, self, tc.cursor, tc.limit)
		if !slices.Equal(page, tc.want) || next != tc.wantNext {
			t.Errorf("Page(%q, %d) = %q, %q; want %q, %q", tc.cursor, tc.limit, page, next, tc.want, tc.wantNext)
		}
	}
}

func TestFilter_NextOnlyWhenOneMoreIsTaken(t *testing.T) {
	sorted := []string{"a", "b", "c", "d", "e"}
	odd := func(s string) (string, bool, error) { return s, s != "b" && s != "d", nil }
	out, next, err := Filter(sorted, self, "", 2, odd)
	if err != nil || !slices.Equal(out, []string{"a", "c"}) || next != "c" {
		t.Fatalf("first page %q, %q, %v", out, next, err)
	}
	out, next, err = Filter(sorted, self, next, 2, odd)
	if err != nil || !slices.Equal(out, []string{"e"}) || next != "" {
		t.Fatalf("second page %q, %q, %v", out, next, err)
	}
	boom := errors.New("boom")
	if _, _, err := Filter(sorted, self, "", 2, func(string) (string, bool, error) { return "", false, boom }); err != boom {
		t.Fatalf("error %v, want %v", err, boom)
	}
}
