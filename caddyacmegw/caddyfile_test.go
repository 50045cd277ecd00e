package caddyacmegw

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// adaptCaddyfile adapts a whole Caddyfile to JSON, as `caddy adapt` does.
func adaptCaddyfile(t *testing.T, input string) ([]byte, error) {
	t.Helper()
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, warnings, err := adapter.Adapt([]byte(input), nil)
	for _, w := range warnings {
		t.Logf("adapt warning: %s:%d: %s", w.File, w.Line, w.Message)
	}
	return out, err
}

// gatewayHandlers returns every acme_gateway handler in an adapted config,
// wherever routes and subroutes put it, in document order.
func gatewayHandlers(t *testing.T, config []byte) []map[string]any {
	t.Helper()
	var root any
	if err := json.Unmarshal(config, &root); err != nil {
		t.Fatalf("adapted config is not JSON: %v", err)
	}
	var found []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "acme_gateway" {
				found = append(found, v)
				return
			}
			for _, k := range sortedKeys(v) {
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(root)
	return found
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable walk: handlers come out in route order
	return keys
}

func jsonEqual(t *testing.T, got map[string]any, want string) {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("expected JSON is bad: %v", err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.MarshalIndent(got, "", "  ")
		e, _ := json.MarshalIndent(w, "", "  ")
		t.Fatalf("handler JSON\n%s\nwant\n%s", g, e)
	}
}

func TestCaddyfile_AdaptFullBlock(t *testing.T) {
	out, err := adaptCaddyfile(t, `
acme.example.com {
	acme_gateway {
		name               corp
		path_prefix        /acme/corp
		base_url           https://acme.example.com/acme/corp
		challenges         http-01 dns-01
		resolvers          10.0.0.53:53 10.0.1.53:53
		http_port          8080
		order_lifetime     2h
		authz_lifetime     12h
		nonce_lifetime     15m
		renewal_info_retry_after 1h
		validation_timeout 20s
		max_validations    16
		terms_of_service   https://example.com/tos
		website            https://example.com
		storage            memory
		issuer             local myca {
			lifetime 12h
		}
	}
}
`)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	jsonEqual(t, oneGatewayHandler(t, out), `{
		"handler": "acme_gateway",
		"name": "corp",
		"path_prefix": "/acme/corp",
		"base_url": "https://acme.example.com/acme/corp",
		"challenges": ["http-01", "dns-01"],
		"resolvers": ["10.0.0.53:53", "10.0.1.53:53"],
		"http_port": 8080,
		"order_lifetime": 7200000000000,
		"authz_lifetime": 43200000000000,
		"nonce_lifetime": 900000000000,
		"renewal_info_retry_after": 3600000000000,
		"validation_timeout": 20000000000,
		"max_validations": 16,
		"terms_of_service": "https://example.com/tos",
		"website": "https://example.com",
		"storage": {"module": "memory"},
		"issuer": {"module": "local", "ca": "myca", "lifetime": 43200000000000}
	}`)
}

func TestCaddyfile_AdaptEmptyBlockLeavesDefaultsToProvision(t *testing.T) {
	out, err := adaptCaddyfile(t, "acme.example.com {\n\tacme_gateway\n}\n")
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	jsonEqual(t, oneGatewayHandler(t, out), `{"handler": "acme_gateway"}`)
}

func TestCaddyfile_AdaptTwoGateways(t *testing.T) {
	tests := []struct {
		name         string
		wantMatchers []string
		caddyfile    string
	}{
		{"in two sites", nil, `
a.example.com {
	acme_gateway {
		name a
	}
}
b.example.com {
	acme_gateway {
		name b
		storage caddy
	}
}
`},
		{"in one site under path matchers", []string{`"/a/*"`, `"/b/*"`}, `
acme.example.com {
	acme_gateway /a/* {
		name a
		path_prefix /a
	}
	acme_gateway /b/* {
		name b
		path_prefix /b
		storage caddy
	}
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adaptCaddyfile(t, tt.caddyfile)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			hs := gatewayHandlers(t, out)
			if len(hs) != 2 {
				t.Fatalf("%d acme_gateway handlers in %s", len(hs), out)
			}
			names := map[any]map[string]any{}
			for _, h := range hs {
				names[h["name"]] = h
			}
			if names["a"] == nil || names["b"] == nil {
				t.Fatalf("handlers %v, want names a and b", hs)
			}
			if s, _ := names["b"]["storage"].(map[string]any); s["module"] != "caddy" {
				t.Fatalf("gateway b storage %v, want caddy", names["b"]["storage"])
			}
			if _, ok := names["a"]["storage"]; ok {
				t.Fatalf("gateway a got b's storage: %v", names["a"])
			}
			for _, m := range tt.wantMatchers {
				if !strings.Contains(string(out), m) {
					t.Fatalf("path matcher %s lost: %s", m, out)
				}
			}
		})
	}
}

func TestCaddyfile_AdaptErrors(t *testing.T) {
	testAdaptErrors(t, []adaptErrorCase{
		{"unknown subdirective", "frobnicate yes", "frobnicate"},
		// Value errors name the value and the line (Caddyfile:3), not the
		// subdirective: intArg and durationArg take d.Val() after AllArgs.
		{"bad duration", "order_lifetime soon", `invalid duration "soon"`},
		{"bad integer", "http_port eighty", `parsing "eighty"`},
		{"missing argument", "name", "argument"},
		{"extra argument", "name a b", "argument"},
		{"challenges without types", "challenges", "argument"},
		{"resolvers without servers", "resolvers", "argument"},
		{"unknown storage module", "storage nosuch", "nosuch"},
		{"storage without module", "storage", "argument"},
		{"storage memory with an argument", "storage memory extra", "argument"},
		{"storage caddy with a block", "storage caddy {\n\t\t\tpath /x\n\t\t}", "argument"},
		{"storage bolt with two files", "storage bolt /a.db /b.db", "argument"},
		{"storage bolt with a block", "storage bolt {\n\t\t\tpath /x\n\t\t}", "argument"},
		{"local issuer with two CAs", "issuer local a b", "argument"},
		{"local issuer with an unknown option", "issuer local {\n\t\t\tcolour blue\n\t\t}", "colour"},
		{"local issuer with a bad lifetime", "issuer local {\n\t\t\tlifetime forever\n\t\t}", `"forever"`},
		{"unknown issuer module", "issuer nosuch", "nosuch"},
	})
}

func TestCaddyfile_AdaptRefusesArgumentOnDirective(t *testing.T) {
	// A path matcher is taken by Caddy; any other argument is an error.
	_, err := adaptCaddyfile(t, "acme.example.com {\n\tacme_gateway /acme/* extra\n}\n")
	if err == nil {
		t.Fatal("adapted a directive with an extra argument")
	}
}

func TestCaddyfile_UnmarshalHandler(t *testing.T) {
	testUnmarshal(t, []unmarshalCase[Handler]{
		{"bare directive", `acme_gateway`, Handler{}, false},
		{"scalars", `acme_gateway {
			name corp
			path_prefix /pki/acme
			http_port 8080
			max_validations 4
			nonce_lifetime 1m
		}`, Handler{
			Name: "corp", PathPrefix: "/pki/acme", HTTPPort: 8080, MaxValidations: 4,
			NonceLifetime: caddy.Duration(time.Minute),
		}, false},
		{"lists", `acme_gateway {
			challenges dns-01
			resolvers 127.0.0.1:5353
		}`, Handler{Challenges: []string{"dns-01"}, Resolvers: []string{"127.0.0.1:5353"}}, false},
		{"storage caddy", `acme_gateway {
			storage caddy
		}`, Handler{StorageRaw: json.RawMessage(`{"module":"caddy"}`)}, false},
		{"storage bolt", `acme_gateway {
			storage bolt
		}`, Handler{StorageRaw: json.RawMessage(`{"module":"bolt"}`)}, false},
		{"storage bolt with a file", `acme_gateway {
			storage bolt /var/lib/acmegw/gw.db
		}`, Handler{StorageRaw: json.RawMessage(`{"module":"bolt","path":"/var/lib/acmegw/gw.db"}`)}, false},
		{"issuer local with default CA", `acme_gateway {
			issuer local
		}`, Handler{IssuerRaw: json.RawMessage(`{"module":"local"}`)}, false},
		{"caddy-style day durations", `acme_gateway {
			authz_lifetime 2d
		}`, Handler{AuthzLifetime: caddy.Duration(48 * time.Hour)}, false},
		{"argument on the directive", `acme_gateway extra`, Handler{}, true},
		{"unknown subdirective", `acme_gateway {
			frobnicate
		}`, Handler{}, true},
		{"bad duration", `acme_gateway {
			validation_timeout 5 seconds
		}`, Handler{}, true},
		{"bad integer", `acme_gateway {
			max_validations many
		}`, Handler{}, true},
	})
}

func TestCaddyfile_UnmarshalLocalIssuer(t *testing.T) {
	testUnmarshal(t, []unmarshalCase[LocalIssuer]{
		{"defaults", `local`, LocalIssuer{}, false},
		{"CA id", `local myca`, LocalIssuer{CA: "myca"}, false},
		{"lifetime", "local myca {\n lifetime 12h\n}", LocalIssuer{CA: "myca", Lifetime: caddy.Duration(12 * time.Hour)}, false},
		{"two CA ids", `local a b`, LocalIssuer{}, true},
		{"unknown option", "local {\n ttl 1h\n}", LocalIssuer{}, true},
		{"lifetime without value", "local {\n lifetime\n}", LocalIssuer{}, true},
	})
}

func TestHandlerValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(h *Handler)
		wantErr string // "" when valid
	}{
		{"defaults", func(*Handler) {}, ""},
		{"both challenge types", func(h *Handler) { h.Challenges = []string{"dns-01", "http-01"} }, ""},
		{"https base_url", func(h *Handler) { h.BaseURL = "https://acme.example.com/acme" }, ""},
		{"http base_url", func(h *Handler) { h.BaseURL = "http://10.0.0.1:8080/acme" }, ""},
		{"unknown challenge type", func(h *Handler) { h.Challenges = []string{"http-01", "tls-alpn-02"} }, "tls-alpn-02"},
		{"challenge type in upper case", func(h *Handler) { h.Challenges = []string{"HTTP-01"} }, "HTTP-01"},
		{"relative base_url", func(h *Handler) { h.BaseURL = "acme.example.com/acme" }, "base_url"},
		{"ftp base_url", func(h *Handler) { h.BaseURL = "ftp://acme.example.com/acme" }, "base_url"},
		{"http_port above 65535", func(h *Handler) { h.HTTPPort = 70000 }, "http_port"},
		{"negative http_port", func(h *Handler) { h.HTTPPort = -1 }, "http_port"},
		{"tls-alpn-01 with the others", func(h *Handler) { h.Challenges = []string{"http-01", "dns-01", "tls-alpn-01"} }, ""},
		{"tls-alpn-01 listed twice", func(h *Handler) { h.Challenges = []string{"tls-alpn-01", "tls-alpn-01"} }, "twice"},
		{"five validation attempts", func(h *Handler) { h.ValidationAttempts = 5 }, ""},
		{"six validation attempts", func(h *Handler) { h.ValidationAttempts = 6 }, "validation_attempts"},
		{"negative validation attempts", func(h *Handler) { h.ValidationAttempts = -1 }, "validation_attempts"},
		{"negative max_validations_per_account", func(h *Handler) { h.MaxValidationsPerAccount = -1 }, "max_validations_per_account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{}
			h.setDefaults()
			tt.modify(h)
			err := h.validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate accepted %+v", h)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestHandlerValidate_RefusesNegativeSettings: negative durations and
// counts would make every order born expired, every nonce refused, or the
// validation pool impossible (make(chan struct{}, -1) in Provision, which
// runs before Validate), so both refuse them.
func TestHandlerValidate_RefusesNegativeSettings(t *testing.T) {
	tests := []struct {
		name   string
		block  string
		modify func(h *Handler)
	}{
		{"max_validations", "max_validations -1", func(h *Handler) { h.MaxValidations = -1 }},
		{"order_lifetime", "order_lifetime -1h", func(h *Handler) { h.OrderLifetime = caddy.Duration(-time.Hour) }},
		{"authz_lifetime", "authz_lifetime -1h", func(h *Handler) { h.AuthzLifetime = caddy.Duration(-time.Hour) }},
		{"nonce_lifetime", "nonce_lifetime -1m", func(h *Handler) { h.NonceLifetime = caddy.Duration(-time.Minute) }},
		{"validation_timeout", "validation_timeout -1s", func(h *Handler) { h.ValidationTimeout = caddy.Duration(-time.Second) }},
		{"renewal_info_retry_after", "renewal_info_retry_after -1s", func(h *Handler) { h.RenewalInfoRetryAfter = caddy.Duration(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var parsed Handler
			if err := parsed.UnmarshalCaddyfile(caddyfile.NewTestDispenser("acme_gateway {\n" + tt.block + "\n}")); err != nil {
				return // refused at parse time: fixed there
			}
			h := &Handler{}
			tt.modify(h)
			h.setDefaults()
			if h.validate() == nil {
				t.Fatalf("%q passes Validate", tt.block)
			}
		})
	}
	t.Run("max_validations -1 is refused before the validation pool is made", func(t *testing.T) {
		h := &Handler{MaxValidations: -1}
		h.setDefaults()
		if h.checkLimits() == nil {
			t.Fatal("checkLimits accepts max_validations -1, which Provision would pass to newValidations")
		}
	})
}
