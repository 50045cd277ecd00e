#!/usr/bin/env bash
# Installs the real clients the test suite drives, if they are missing;
# from Debian packages:
#   certbot  integration/certbot_test.go
#   curl     the dns-01 hook of that test (it falls back to python3)
#   openssl  the independent check of the CM client's CMS signatures
#   postgres the throwaway clusters of storage/postgres/pgtest (initdb and
#            pg_ctl from `pg_config --bindir`)
# and, with `go install` into $(go env GOPATH)/bin:
#   step     the smallstep CLI, integration/step_test.go
# Idempotent: apt-get and go install run only when something must be
# installed.
# Under CI=true any failure exits non-zero; elsewhere it is a warning, and
# the tests that need a missing client skip.
set -euo pipefail

# "command:package" pairs.
needs=(certbot:certbot curl:curl pg_config:postgresql openssl:openssl)

fail() {
	if [[ "${CI:-}" == "true" ]]; then
		echo "deps: error: $*" >&2
		exit 1
	fi
	echo "deps: warning: $*; tests that need it will skip" >&2
	exit 0
}

# The step CLI the tests drive, pinned; `go version -m` tells which module
# version a binary was built from. In a subshell: outside CI a failure
# warns and the Debian packages below are still installed.
(
	module=github.com/smallstep/cli
	version=v0.21.0
	gopath="$(go env GOPATH)"
	bin="${gopath%%:*}/bin/step" # its first entry, as go install has it
	if ! go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+${module}[[:space:]]+${version}([[:space:]]|$)"; then
		echo "deps: installing ${module}/cmd/step@${version}" >&2
		GOBIN="$(dirname "$bin")" go install "${module}/cmd/step@${version}" ||
			fail "go install ${module}/cmd/step@${version} failed"
	fi
)

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
