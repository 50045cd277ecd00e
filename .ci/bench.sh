#!/usr/bin/env bash
# Load benchmark: the gateway on each storage against Caddy's own
# acme_server, in one run on one machine, so that the ratios compare like
# with like. For each server it starts one Caddy (built from ./cmd/caddy)
# on loopback, drives it with cmd/acmeload (dns-01, 50 workers) and prints
# certificates/s, latency, errors, the server's CPU time per certificate
# and each gateway row's certificates/s relative to acme_server's.
#
#   bash .ci/bench.sh              # 2000 certificates a server
#   BENCH_N=300 bash .ci/bench.sh  # a quick run
#   bash .ci/bench.sh rss          # memory growth instead, see below
#
# With "rss" it runs one gateway on its default storage and prints its
# resident memory (VmRSS, and its anonymous and file-backed parts) after
# BENCH_RSS_FIRST certificates (default 10000) and again after
# BENCH_RSS_TOTAL (default 100000), and the growth between the two.
#
# Environment: BENCH_N (certificates a server, default 2000), BENCH_C
# (workers, default 50), BENCH_DURATION (acmeload's time limit, default
# 120s), BENCH_LOAD_ARGS (more acmeload flags for every row, e.g.
# -http1 to speak HTTP/1.1 as certbot does). The postgres row needs initdb from `pg_config --bindir` (and, as
# root, a postgres user); without it the row is skipped with a message.
#
# The load generator runs on the same machine as the server and competes
# with it for CPU: compare rows with each other, not with production.
# CPU per certificate counts the server process only, from just before
# acmeload starts to just after it ends, so it includes the workers'
# account creation (a few dozen requests) but not Caddy's start.
#
# Exits non-zero when a server fails to start or issues nothing; the table
# is printed either way.
set -euo pipefail

N=${BENCH_N:-2000}
read -ra LOAD_ARGS <<<"${BENCH_LOAD_ARGS:-}"
C=${BENCH_C:-50}
DURATION=${BENCH_DURATION:-120s}
BUILD_TIMEOUT=600 # seconds; a cold module cache is slow
START_TIMEOUT=60  # seconds for a server to answer its directory

cd "$(dirname "$0")/.."

tmp=$(mktemp -d "${TMPDIR:-/tmp}/acmegw-bench.XXXXXX")
chmod 755 "$tmp" # the postgres user must reach its cluster inside
caddy_pid=""
load_pid=""
pg_stop=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n "$load_pid" ]]; then
		kill "$load_pid" 2>/dev/null || true
		wait "$load_pid" 2>/dev/null || true
	fi
	if [[ -n "$caddy_pid" ]] && kill -0 "$caddy_pid" 2>/dev/null; then
		kill "$caddy_pid" 2>/dev/null || true
		wait "$caddy_pid" 2>/dev/null || true
	fi
	if ((${#pg_stop[@]})); then
		"${pg_stop[@]}" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "bench: $*" >&2; }

# free_port prints a port on 127.0.0.1 that is free for TCP and UDP now
# (acmeload serves DNS on both).
free_port() {
	python3 - <<-'EOF'
	import socket
	while True:
	    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	    t.bind(("127.0.0.1", 0))
	    port = t.getsockname()[1]
	    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    try:
	        u.bind(("127.0.0.1", port))
	    except OSError:
	        t.close()
	        continue
	    u.close()
	    t.close()
	    print(port)
	    break
	EOF
}

# jget prints a field of a JSON file, by a dotted path: jget f latency_ms.p50
jget() {
	if command -v jq >/dev/null 2>&1; then
		jq -r ".$2" "$1"
	else
		python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$1" "$2"
	fi
}

# cpu_ticks prints utime+stime of a process, in clock ticks: fields 14 and
# 15 of /proc/<pid>/stat, counted after the ")" that ends field 2 (comm),
# which may itself hold spaces.
cpu_ticks() {
	local stat rest f
	stat=$(<"/proc/$1/stat")
	rest=${stat##*) }
	read -ra f <<<"$rest"
	echo $((f[11] + f[12]))
}

# answers URL: does the URL answer 200 (any certificate accepted: the root
# is not known yet)?
answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsk --max-time 2 -o /dev/null "$1"
	else
		python3 -c '
import ssl, sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2, context=ssl._create_unverified_context())' "$1" 2>/dev/null
	fi
}

log "building caddy and acmeload into $tmp/bin"
timeout "$BUILD_TIMEOUT" go build -o "$tmp/bin/caddy" ./cmd/caddy
timeout "$BUILD_TIMEOUT" go build -o "$tmp/bin/acmeload" ./cmd/acmeload

# A throwaway PostgreSQL cluster, as storage/postgres/pgtest starts one.
pg_dsn=""
pg_skip=""
start_postgres() {
	local bin as=() dir port
	if ! bin=$(pg_config --bindir 2>/dev/null); then
		pg_skip="no pg_config"
		return
	fi
	for tool in initdb pg_ctl postgres; do
		if [[ ! -x "$bin/$tool" ]]; then
			pg_skip="no $bin/$tool"
			return
		fi
	done
	dir="$tmp/pg"
	mkdir "$dir"
	if ((EUID == 0)); then
		# initdb refuses root.
		if ! id postgres >/dev/null 2>&1; then
			pg_skip="running as root and there is no postgres user for initdb"
			return
		fi
		chown postgres: "$dir"
		as=(runuser -u postgres --)
		command -v runuser >/dev/null 2>&1 || as=(setpriv --reuid=postgres --regid=postgres --init-groups)
	fi
	if ! "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1; then
		pg_skip="initdb failed: $(tail -n 3 "$tmp/initdb.log" | tr '\n' ' ')"
		return
	fi
	port=$(free_port)
	pg_stop=("${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop)
	if ! "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >"$tmp/pg_ctl.log" 2>&1; then
		pg_skip="pg_ctl start failed: $(tail -n 3 "$dir/log" 2>/dev/null | tr '\n' ' ')"
		pg_stop=()
		return
	fi
	pg_dsn="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

# Results, one entry a row, in run order.
rows=()     # "server|storage"
results=()  # report JSON file, or "" when the server failed
cpu=()      # server CPU ticks during the load
failed=0
clk_tck=$(getconf CLK_TCK)

# start_server SERVER STORAGE NAME: starts one Caddy serving SERVER
# (acme_gateway or acme_server) on STORAGE ("default" for none given) in
# $tmp/NAME, and sets caddy_pid, srv_dir, srv_url, srv_root and srv_dns.
# Returns non-zero, with Caddy's log, when it does not answer.
start_server() {
	local server=$1 storage=$2 name=$3
	local https_port http_port path handler
	srv_dir="$tmp/$name"
	mkdir -p "$srv_dir/data" "$srv_dir/config"
	https_port=$(free_port)
	http_port=$(free_port)
	srv_dns=127.0.0.1:$(free_port)
	local storage_line="storage $storage"
	if [[ $storage == default ]]; then
		storage_line="# default storage"
	fi
	case $server in
	acme_gateway)
		path=/acme/directory
		handler="acme_gateway {
		$storage_line
		challenges dns-01
		resolvers $srv_dns
		deny_validation_to none
		# Every limit stays on, so that counting is part of what is
		# measured, with counts no load from one address reaches.
		limits {
			accounts_per_ip               1000000
			orders_per_account            1000000
			certificates_per_registration 1000000
		}
	}"
		;;
	acme_server)
		path=/acme/local/directory
		handler="acme_server {
		challenges dns-01
		resolvers $srv_dns
	}"
		;;
	esac
	cat >"$srv_dir/Caddyfile" <<-EOF
	{
		admin off
		skip_install_trust
		http_port $http_port
		https_port $https_port
		log {
			level ERROR
		}
	}

	localhost:$https_port {
		bind 127.0.0.1
		tls internal
		$handler
	}
	EOF

	log "$server (storage ${storage%% *}): starting caddy on 127.0.0.1:$https_port"
	XDG_DATA_HOME="$srv_dir/data" XDG_CONFIG_HOME="$srv_dir/config" \
		"$tmp/bin/caddy" run --config "$srv_dir/Caddyfile" --adapter caddyfile \
		>"$srv_dir/caddy.log" 2>&1 &
	caddy_pid=$!
	srv_url="https://localhost:$https_port$path"
	srv_root="$srv_dir/data/caddy/pki/authorities/local/root.crt"
	local deadline=$((SECONDS + START_TIMEOUT))
	until answers "$srv_url"; do
		if ! kill -0 "$caddy_pid" 2>/dev/null || ((SECONDS >= deadline)); then
			log "$server: no directory at $srv_url within ${START_TIMEOUT}s; caddy's log:"
			tail -n 20 "$srv_dir/caddy.log" >&2
			stop_caddy
			return 1
		fi
		sleep 0.2
	done
}

# run_load N REPORT: runs acmeload against the started server for N
# certificates, writing its JSON report to REPORT. Returns acmeload's
# status (1: nothing issued, with a report), showing its log on failure.
run_load() {
	local n=$1 report=$2 rc=0
	# acmeload stops itself at -duration; the timeout is for a hang. In the
	# background so that a signal's trap runs at once, not after the load.
	timeout --kill-after=10s "$(($(timeout_seconds "$DURATION") + 120))s" \
		"$tmp/bin/acmeload" -directory "$srv_url" -root "$srv_root" \
		-c "$C" -n "$n" -duration "$DURATION" -challenge dns-01 \
		-dns-addr "$srv_dns" -json ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"} \
		>"$report" 2>"$report.log" &
	load_pid=$!
	wait "$load_pid" || rc=$?
	load_pid=""
	if ((rc != 0)); then
		log "acmeload exited $rc; its log:"
		tail -n 20 "$report.log" >&2
	fi
	return "$rc"
}

# bench SERVER STORAGE: runs one server and the load against it.
bench() {
	local server=$1 storage=$2
	rows+=("$server|$storage")
	results+=("")
	cpu+=(0)
	local i=$((${#rows[@]} - 1))
	if ! start_server "$server" "$storage" "${server}-${storage%% *}"; then # not the DSN
		failed=1
		return
	fi
	local before after rc=0 report="$srv_dir/report.json"
	before=$(cpu_ticks "$caddy_pid")
	run_load "$N" "$report" || rc=$?
	after=$(cpu_ticks "$caddy_pid")
	stop_caddy
	# acmeload exits 1 with a report when nothing was issued.
	if ((rc == 0 || rc == 1)) && [[ -s "$report" ]]; then
		results[i]="$report"
		cpu[i]=$((after - before))
	fi
	if ((rc != 0)); then
		failed=1
	fi
}

# rss_line PID prints VmRSS, RssAnon and RssFile of PID in MB.
rss_line() {
	awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s %.1f MB  ", $1, $2 / 1024 }' "/proc/$1/status"
	echo
}

# rss_mb PID prints VmRSS of PID in MB.
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# bench_rss: the gateway on its default storage, resident memory after
# BENCH_RSS_FIRST certificates and after BENCH_RSS_TOTAL.
bench_rss() {
	local first=${BENCH_RSS_FIRST:-10000} total=${BENCH_RSS_TOTAL:-100000} a b
	DURATION=${BENCH_DURATION:-1200s}
	start_server acme_gateway default rss || exit 1
	run_load "$first" "$srv_dir/first.json" || exit 1
	a=$(rss_mb "$caddy_pid")
	echo "after $first certificates: $(rss_line "$caddy_pid")"
	run_load "$((total - first))" "$srv_dir/rest.json" || exit 1
	b=$(rss_mb "$caddy_pid")
	echo "after $total certificates: $(rss_line "$caddy_pid")"
	find "$srv_dir/data" -name '*.db' -printf 'database %P: %s bytes\n'
	awk -v a="$a" -v b="$b" 'BEGIN { printf "VmRSS growth: %+.1f MB\n", b - a }'
	stop_caddy
}

stop_caddy() {
	kill "$caddy_pid" 2>/dev/null || true
	wait "$caddy_pid" 2>/dev/null || true
	caddy_pid=""
}

# timeout_seconds 120s|2m|1h prints whole seconds (acmeload takes Go
# durations; these three units are what a person sets here).
timeout_seconds() {
	local d=$1
	case $d in
	*ms) echo 1 ;;
	*s) echo "${d%s}" | cut -d. -f1 ;;
	*m) echo $((${d%m} * 60)) ;;
	*h) echo $((${d%h} * 3600)) ;;
	*) echo 600 ;;
	esac
}

if [[ ${1:-} == rss ]]; then
	bench_rss
	exit 0
fi

start_postgres
if [[ -n "$pg_skip" ]]; then
	log "skipping the postgres row: $pg_skip"
else
	log "postgres on ${pg_dsn#*@}"
fi

bench acme_gateway memory
bench acme_gateway default
bench acme_gateway caddy
if [[ -n "$pg_dsn" ]]; then
	bench acme_gateway "postgres $pg_dsn"
fi
bench acme_server bbolt # its own database; the label only

# The reference for the ratio column: acme_server, the last row.
ref=""
last=$((${#rows[@]} - 1))
if [[ -n "${results[last]}" ]]; then
	ref=$(jget "${results[last]}" certs_per_second)
fi

echo
echo "acmeload: -c $C -n $N -duration $DURATION -challenge dns-01${BENCH_LOAD_ARGS:+ $BENCH_LOAD_ARGS}, all on loopback, $(nproc) CPUs"
fmt="%-13s %-9s %9s %8s %8s %7s %12s %14s\n"
# shellcheck disable=SC2059
printf "$fmt" server storage certs/s "p50 ms" "p99 ms" errors "cpu ms/cert" "vs acme_server"
for i in "${!rows[@]}"; do
	server=${rows[i]%%|*}
	storage=${rows[i]#*|}
	storage=${storage%% *} # "postgres <dsn>" -> postgres
	f=${results[i]}
	if [[ -z "$f" ]]; then
		# shellcheck disable=SC2059
		printf "$fmt" "$server" "$storage" failed - - - - -
		continue
	fi
	rate=$(jget "$f" certs_per_second)
	issued=$(jget "$f" issued)
	read -r rate_s p50 p99 per_cert ratio < <(awk \
		-v rate="$rate" -v p50="$(jget "$f" latency_ms.p50)" -v p99="$(jget "$f" latency_ms.p99)" \
		-v ticks="${cpu[i]}" -v hz="$clk_tck" -v issued="$issued" -v ref="$ref" -v gw="$([[ $server == acme_gateway ]] && echo 1)" \
		'BEGIN {
			per = issued > 0 ? sprintf("%.2f", ticks / hz * 1000 / issued) : "-"
			r = (gw && ref > 0) ? sprintf("%.2fx", rate / ref) : "-"
			printf "%.1f %.0f %.0f %s %s\n", rate, p50, p99, per, r
		}')
	# shellcheck disable=SC2059
	printf "$fmt" "$server" "$storage" "$rate_s" "$p50" "$p99" "$(jget "$f" errors)" "$per_cert" "$ratio"
done
exit "$failed"
