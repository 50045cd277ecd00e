// Package listing holds what the memory and caddystore backends share of
// their listings: the key that sorts records by creation time and id, which
// is also their cursor, and paging through keys sorted that way.
package listing

import (
	"math"
	"strconv"
	"time"
)

// Key is the sort key of a record created at created with id: keys sort
// oldest first, ties broken by id. It is also the record's cursor in
// ListOrders, ListAccounts, ListCertificates and ListAudit.
func Key(created time.Time, id string) string {
	ns := created.UnixNano()
	switch {
	case created.Before(minTime):
		ns = 0
	case created.After(maxTime):
		ns = math.MaxInt64
	}
	n := strconv.FormatInt(ns, 10)
	return zeros[len(n):] + n + "." + id
}

// ID returns the id in key, and whether key has the form of a Key at all;
// the id of a key of that form may still be empty.
func ID(key string) (id string, ok bool) {
	if len(key) <= len(zeros) || key[len(zeros)] != '.' {
		return "", false
	}
	return key[len(zeros)+1:], true
}

// UnixNano is undefined outside these.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, math.MaxInt64)
)

const zeros = "0000000000000000000" // as many digits as math.MaxInt64
