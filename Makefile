# The two commands of the README: `make run` and `make test`.
.PHONY: run test deps bench

run:
	go run ./cmd/caddy run --config Caddyfile.example --adapter caddyfile

deps:
	bash .ci/deps.sh

test: deps
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go test -race -count=1 ./...
	go test -run '^$$' -fuzz FuzzParseCAAIssueValue -fuzztime 10s ./validate/
	go test -run '^$$' -fuzz FuzzJoinTXT -fuzztime 10s ./validate/

bench:
	go test -run '^$$' -bench . -benchtime 2s ./caddyacmegw/ ./storage/...
	go test -run '^$$' -bench FullIssuance -benchtime 300x ./integration/
