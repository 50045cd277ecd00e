#!/usr/bin/env bash
# Installs the real clients the test suite drives, if they are missing;
# from Debian packages:
#   certbot  integration/certbot_test.go
#   chromium the browser of the console's tests, integration/console_test.go
#   curl     the dns-01 hook of the certbot test (which falls back to
#            python3) and the scrape of /metrics, integration/metrics_test.go
#   lego     the lego command line the console shows, integration/console_test.go
#   openssl  the independent check of the CM client's CMS signatures
#   postgres the throwaway clusters of storage/postgres/pgtest (initdb and
#            pg_ctl from `pg_config --bindir`)
# and, with `go install` into $(go env GOPATH)/bin:
#   step     the smallstep CLI, integration/step_test.go
#   xcaddy   the build that xcaddy.md documents, integration/xcaddybuild
# Idempotent: apt-get and go install run only when something must be
# installed.
# Under CI=true any failure exits non-zero; elsewhere it is a warning, and
# the tests that need a missing client skip.
set -euo pipefail

# "command:package" pairs.
needs=(certbot:certbot curl:curl lego:lego pg_config:postgresql openssl:openssl chromium:chromium)

fail() {
	if [[ "${CI:-}" == "true" ]]; then
		echo "deps: error: $*" >&2
		exit 1
	fi
	echo "deps: warning: $*; tests that need it will skip" >&2
	exit 0
}

# Go programs the tests drive, pinned; `go version -m` tells which module
# version a binary was built from. In a subshell: outside CI a failure
# warns and the Debian packages below are still installed.
goinstall() { # module, package path below it, version
	(
		gopath="$(go env GOPATH)"
		bin="${gopath%%:*}/bin/$(basename "$2")" # its first entry, as go install has it
		if ! go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$1[[:space:]]+$3([[:space:]]|$)"; then
			echo "deps: installing $1/$2@$3" >&2
			GOBIN="$(dirname "$bin")" go install "$1/$2@$3" || fail "go install $1/$2@$3 failed"
		fi
	)
}
goinstall github.com/smallstep/cli cmd/step v0.21.0
goinstall github.com/caddyserver/xcaddy cmd/xcaddy v0.4.5

missing=()
for pair in "${needs[@]}"; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "missing ${missing[*]} and no apt-get to install them"
sudo=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		fail "missing ${missing[*]}; installing needs root (apt-get install ${missing[*]})"
	fi
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq || fail "apt-get update failed"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
	fail "apt-get install ${missing[*]} failed"

for pair in "${needs[@]}"; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || fail "${pair%%:*} still missing after installing ${pair#*:}"
done
