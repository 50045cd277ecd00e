package cm

import (
	"strings"
	"testing"
)

func TestError_Kind(t *testing.T) {
	tests := []struct {
		op      string
		status  int
		message string
		want    Kind
	}{
		{"issue", 400, "cannot parse the PKCS#10 request", KindCSR},
		{"issue", 400, "CSR key too weak", KindCSR},
		{"issue", 400, "bad certification request", KindCSR},
		{"issue", 403, `identifier "x.test" is not allowed`, KindName},
		{"issue", 422, "domain not permitted", KindName},
		{"issue", 400, "subject alternative name missing", KindName},
		{"issue", 403, "officer lacks required role(s) acme-ro", KindConfig},
		{"issue", 401, "", KindConfig},
		{"issue", 400, "unknown token procedure", KindOther},
		{"search", 404, "no certificate", KindNotFound},
		{"issue", 409, "conflict", KindOther},
		{"issue", 302, "", KindOther},
		{"issue", 503, "name service down", KindTransient},
		{"issue", 429, "slow down", KindTransient},
		{"issue", 408, "", KindTransient},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.message, func(t *testing.T) {
			body := `{"message":"` + strings.ReplaceAll(tt.message, `"`, `\"`) + `"}`
			if got := statusError(tt.op, tt.status, []byte(body)).Kind(); got != tt.want {
				t.Errorf("Kind = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStatusError_BoundsMessage(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"long message is cut", `{"message":"` + strings.Repeat("é", 300) + `"}`, strings.Repeat("é", 100) + "…"},
		{"control characters are blanked", `{"message":"a\nforged: line"}`, "a forged: line"},
		{"body that is not JSON is not echoed", "<html>secret stack trace</html>", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusError("issue", 500, []byte(tt.body)).Message; got != tt.want {
				t.Errorf("Message = %q, want %q", got, tt.want)
			}
		})
	}
}
