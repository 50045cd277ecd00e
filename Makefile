# The two commands of the README: `make run` and `make test`.
.PHONY: run test deps bench demo

run:
	go run ./cmd/caddy run --config Caddyfile.example --adapter caddyfile

# The README's one-machine trial: the gateway and a DNS server for
# *.demo.test on 127.0.0.1, everything kept in $(DEMO_DIR).
DEMO_DIR ?= /tmp/caddyacmegw-demo
DEMO_HTTPS_PORT ?= 8443
DEMO_HTTP01_PORT ?= 8402
DEMO_DNS_PORT ?= 8053
demo:
	go run ./cmd/demo -dir $(DEMO_DIR) -https-port $(DEMO_HTTPS_PORT) -http01-port $(DEMO_HTTP01_PORT) -dns-port $(DEMO_DNS_PORT)

deps:
	bash .ci/deps.sh

test: deps
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go test -race -count=1 -timeout 30m ./...
	# Without the race detector, which the size check skips for its time.
	go test -count=1 -run 'TestDeleteExpired_FileStopsGrowing' -v ./storage/boltstore/
	go test -run '^$$' -fuzz FuzzParseCAAIssueValue -fuzztime 100000x ./validate/
	go test -run '^$$' -fuzz FuzzJoinTXT -fuzztime 100000x ./validate/
	go test -run '^$$' -fuzz FuzzParseCertID -fuzztime 100000x ./gateway/

bench:
	go test -run '^$$' -bench . -benchtime 2s ./gateway/ ./storage/...
	go test -run '^$$' -bench FullIssuance -benchtime 300x ./integration/

# The gateway on each storage against Caddy's acme_server under cmd/acmeload,
# one Caddy at a time on loopback; BENCH_N certificates a server (default 2000).
.PHONY: bench-load
bench-load:
	bash .ci/bench.sh

# The gateway on its default storage: resident memory after 10,000 and
# after 100,000 certificates (BENCH_RSS_FIRST, BENCH_RSS_TOTAL).
.PHONY: bench-rss
bench-rss:
	bash .ci/bench.sh rss

# Load an ACME server with cmd/acmeload, e.g.
#   make load DIRECTORY=https://localhost:8443/acme/directory ROOT=root.crt ARGS='-c 50 -n 1000 -json'
# The server's `resolvers` must be $(DNS_ADDR) (and for -challenge http-01
# its http_port the port of -http-addr). See `go doc ./cmd/acmeload`.
.PHONY: load
DNS_ADDR ?= 127.0.0.1:5353
load:
	@test -n "$(DIRECTORY)" || { echo 'usage: make load DIRECTORY=<directory URL> [ROOT=<root PEM>] [DNS_ADDR=host:port] [ARGS=...]'; exit 2; }
	go run ./cmd/acmeload -directory $(DIRECTORY) $(if $(ROOT),-root $(ROOT)) -dns-addr $(DNS_ADDR) $(ARGS)
