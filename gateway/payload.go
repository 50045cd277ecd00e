package gateway

import (
	"bytes"
	"encoding/json"
	"time"
)

// Optional fields of what clients send.
//
// An optional field that a client leaves out, sends as null, or sends with
// its type's zero or empty value ("", 0, false, [], {}, or the zero time
// 0001-01-01T00:00:00Z, which Go clients such as the step CLI send for a
// time they were not asked for) is not given: it means what leaving it out
// means. The one exception is RFC 8555's own (§7.3.2): an account update
// with "contact": [] removes the account's contacts, where a null or
// missing contact leaves them as they are.
//
// What that makes of each object the server decodes; [brackets] list the
// fields that must be given:
//
//	JWS             header, signatures: none; protected jwk or kid: the
//	                other one names the key; crit: none
//	                [protected, payload, signature]
//	newAccount      contact: none; termsOfServiceAgreed: not asked for (no
//	                agreement is enforced); onlyReturnExisting: create an
//	                account; externalAccountBinding: none
//	newOrder        notBefore, notAfter: the issuer's default [identifiers]
//	account update  status: unchanged; contact: see above
//	keyChange       [account, oldKey]
//	revokeCert      reason: 0, unspecified [certificate]
//	finalize        [csr]
//	challenge       any object, "{}" included, asks for validation
//	authorization   [status: deactivated]
//
// Decoding JSON applies the rule to most fields by itself, since null
// decodes as the zero value; absentJSON applies it to fields kept as raw
// JSON, and optionalTime to times.

// absentJSON reports whether an optional raw JSON value is not given:
// missing, or null, "", 0, false, [] or {}.
func absentJSON(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	switch string(v) {
	case "", "null", `""`, "0", "false":
		return true
	}
	n := len(v)
	if n >= 2 && (v[0] == '[' && v[n-1] == ']' || v[0] == '{' && v[n-1] == '}') {
		return len(bytes.TrimSpace(v[1:n-1])) == 0
	}
	return false
}

// optionalTime parses an optional RFC 3339 time of the named field; "" and
// the zero time are not given and return the zero time.
func optionalTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, malformed("%s is not an RFC 3339 time", field)
	}
	if t.IsZero() {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// decodePayload decodes a JSON payload into v; unknown fields are ignored,
// as RFC 8555 lets clients send extensions.
func decodePayload(payload []byte, v any) error {
	if len(payload) == 0 {
		return malformed("payload must not be empty")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return malformed("payload: %v", err)
	}
	return nil
}
