#!/usr/bin/env bash
# make bench-cluster: the same seeded workload (cmd/kvreg-bench) through a
# load balancer, against three kvreg replicas and against three replicas of
# the reference registry, one after the other in one run, on this machine,
# then each figure side by side with the ratio.
#
# One versitygw S3 server (as bench.sh's STORE=s3) holds both clusters'
# blob bytes, one bucket per cluster and round, on the same disk. One
# PostgreSQL (Debian's, as bench-postgres.sh starts it: fsync,
# synchronous_commit and full_page_writes on) holds kvreg's metadata, a
# fresh database per round. Each cluster sits behind its own haproxy
# (Debian's; balance roundrobin, health checks GET /readyz for kvreg and
# GET /v2/ for the reference), and kvreg-bench talks to that haproxy only.
#
#   kvreg:      three `kvreg serve --replicas --db postgres://... --blob-store s3://...`
#   reference:  three distribution v3 `registry serve`, one config each that
#               differ only in the listen address: the same bucket through
#               the s3 driver as bench.sh writes it, the same http.secret
#               (so that an upload started on one replica can go on at
#               another) and `cache: blobdescriptor: inmemory`, the
#               reference's default. That cache is per replica: after the
#               DELETEs and the garbage-collect it is what the replicas
#               hold that the bucket no longer does (here it is emptied,
#               since garbage-collect needs them stopped and they restart).
#
# The reference's time to give bytes back after a DELETE includes what its
# docs require: stop all three replicas, `registry garbage-collect CONFIG
# --delete-untagged` once, start the three again and wait until each
# answers GET /v2/ (so that the balancer has somewhere to send the checks
# that follow). kvreg gives the bytes back in the DELETE.
#
# Memory (kvreg-bench -pid) is one replica's: the first of each cluster.
# CPU (kvreg-bench -cpu) is per group of processes over the push, pull and
# HEAD phases: the replicas, the S3 server, PostgreSQL (every backend and
# helper under its postmaster), haproxy and the load tool, per unit of each
# phase's work.
# The database counters and S3 requests are the three kvreg replicas'
# /metrics summed, scraped right before and right after each run.
#
# Environment:
#   BENCH_ARGS     extra kvreg-bench flags for every run
#   SERVE_ARGS     extra kvreg serve flags for every kvreg replica
#   REPEAT         rounds (default 3); each round runs both clusters, in
#                  alternating order; the table shows the median of each figure
#   REPLICAS       processes per cluster (default 3)
#   REDIRECT       1 (default): both answer blob GETs with a redirect to a
#                  presigned URL of the bucket, the reference's default
#                  (kvreg --blob-redirect); 0: both send the bytes themselves
#   S3_DELAY       a wait before every request to the S3 server (a Go
#                  duration, e.g. 10ms), by a proxy in front of it
#                  (kvreg-bench -delay-proxy): a bucket over a network
#                  rather than on loopback; its CPU is a group of its own
#   DIST_VERSION   distribution version for go install (default v3.0.0)
#   PG_CONF        more postgresql.conf lines
#   BENCH_TMPDIR   where the data directories go (default: $TMPDIR or /tmp)
#   KEEP           1: keep the work directory (logs, JSON results)
#   OUT            a directory to copy the JSON results and the table into
set -euo pipefail

cd "$(dirname "$0")/../.."
source cmd/kvreg-bench/lib.sh
GO=${GO:-go}
DIST_VERSION=${DIST_VERSION:-v3.0.0}
REPEAT=${REPEAT:-3}
REPLICAS=${REPLICAS:-3}
REDIRECT=${REDIRECT:-1}
BENCH_ARGS=${BENCH_ARGS:-}
SERVE_ARGS=${SERVE_ARGS:-}
large_mb

find_postgres
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
if [[ ! -x $HAPROXY ]]; then log "haproxy is not installed (apt-get install haproxy)"; exit 1; fi
find_versitygw

make_work kvreg-bench-cluster
cleanup() {
	for f in "$WORK"/ref-*/r*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
	cleanup_common
}
trap cleanup EXIT

# ---- build and install ----
build
install_distribution || exit 1

# ---- the S3 server ----
start_versitygw
delay_s3

# ---- PostgreSQL ----
start_postgres

# ---- haproxy ----
# start_haproxy DIR CHECKPATH BACKEND...: one haproxy in front of the
# backends; its URL in DIR/haproxy.url. retries/redispatch: a connection refused by a
# replica that is restarting goes to another one.
start_haproxy() {
	local dir=$1 check=$2 port i=0
	shift 2
	port=$($BENCH -free-port)
	{
		cat <<CFG
global
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout http-request 60s
    retries 3
    option redispatch

frontend bench
    bind 127.0.0.1:$port
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET $check
    http-check expect status 200
CFG
		for be in "$@"; do echo "    server r$i $be check inter 1s fall 2 rise 1"; i=$((i + 1)); done
	} >"$dir/haproxy.cfg"
	"$HAPROXY" -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
	PIDS+=("$!")
	echo "$!" >"$dir/haproxy.pid"
	wait_ok "http://127.0.0.1:$port/v2/" || { log "haproxy did not answer"; cat "$dir/haproxy.log" >&2; exit 1; }
	echo "http://127.0.0.1:$port" >"$dir/haproxy.url"
}
stop_haproxy() {
	local pid
	pid=$(cat "$1/haproxy.pid")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

# scrape_all DIR WHEN: the replicas' counters summed, into DIR/metrics.WHEN.
scrape_all() {
	local u
	for u in $(cat "$1/urls"); do scrape "$u"; done |
		awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' >"$1/metrics.$2"
}

FAILED=0

# run_kvreg ROUND
run_kvreg() {
	local dir=$WORK/kvreg-$1 j port pids=() backends=() url db
	mkdir -p "$dir" "$S3_ROOT/kvreg-$1"
	psql_q "CREATE DATABASE bench$1" >/dev/null
	db="postgres://postgres@127.0.0.1:$PGPORT/bench$1?sslmode=disable"
	local store=(--blob-store "s3://kvreg-$1?endpoint=$S3_URL&region=$S3_REGION&path-style=true")
	if [[ $REDIRECT == 1 ]]; then store+=(--blob-redirect); fi
	: >"$dir/urls"
	for ((j = 1; j <= REPLICAS; j++)); do
		port=$($BENCH -free-port)
		# shellcheck disable=SC2086
		AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET \
			"$WORK/bin/kvreg" serve --replicas --addr "127.0.0.1:$port" --root "$dir/r$j" --db "$db" "${store[@]}" \
			$SERVE_ARGS 2>"$dir/r$j.log" &
		pids+=("$!")
		PIDS+=("$!")
		backends+=("127.0.0.1:$port")
		echo "http://127.0.0.1:$port" >>"$dir/urls"
		# One at a time: the schema is made by the first.
		wait_ok "http://127.0.0.1:$port/readyz" || { log "kvreg replica $j did not start"; cat "$dir/r$j.log" >&2; exit 1; }
	done
	start_haproxy "$dir" /readyz "${backends[@]}"
	url=$(cat "$dir/haproxy.url")
	log "round $1: kvreg ×$REPLICAS (pids ${pids[*]}) behind haproxy $url, blobs in ${store[1]}"
	scrape_all "$dir" before
	pg_stat "bench$1" >"$dir/pgstat.before"
	settle
	# shellcheck disable=SC2086
	$BENCH -url "$url" -name "kvreg ×$REPLICAS" -data-dir "$S3_ROOT/kvreg-$1" -pid "${pids[0]}" -dd-file "$WORK/dd.bin" \
		-cpu "registry=$(IFS=,; echo "${pids[*]}");S3 server=$VGW_PID;database=$(head -1 "$PGDATA/postmaster.pid");balancer=$(cat "$dir/haproxy.pid")$S3_CPU" \
		$BENCH_ARGS >"$WORK/kvreg-$1.json" ||
		{ log "kvreg-bench against kvreg failed; its figures so far follow"; FAILED=1; }
	scrape_all "$dir" after
	pg_stat "bench$1" >"$dir/pgstat.after"
	stop_haproxy "$dir"
	for p in "${pids[@]}"; do kill "$p"; done
	for p in "${pids[@]}"; do wait "$p" || true; done
	for ((j = 1; j <= REPLICAS; j++)); do rm -rf "${dir:?}/r$j"; done
	rm -rf "$S3_ROOT/kvreg-$1"
}

# run_ref ROUND
run_ref() {
	local dir=$WORK/ref-$1 j port backends=() url
	mkdir -p "$dir" "$S3_ROOT/ref-$1"
	local redirect=''
	if [[ $REDIRECT == 0 ]]; then redirect="
  redirect:
    disable: true"; fi
	local start='' stop=''
	for ((j = 1; j <= REPLICAS; j++)); do
		port=$($BENCH -free-port)
		backends+=("127.0.0.1:$port")
		cat >"$dir/r$j.yml" <<CONFIG
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  s3:
    accesskey: $S3_KEY
    secretkey: $S3_SECRET
    region: $S3_REGION
    regionendpoint: $S3_URL
    forcepathstyle: true
    secure: false
    bucket: ref-$1$redirect
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: kvreg-bench-cluster-secret
CONFIG
		# Started detached, so that the after-delete script can stop and start them.
		start+="setsid $REGBIN serve $dir/r$j.yml >>$dir/r$j.log 2>&1 & echo \$! >$dir/r$j.pid
"
		stop+="pid=\$(cat $dir/r$j.pid); kill \"\$pid\"; pids+=(\"\$pid\")
"
	done
	sh -c "$start"
	for b in "${backends[@]}"; do wait_ok "http://$b/v2/" || { log "a reference replica did not start"; cat "$dir"/r*.log >&2; exit 1; }; done
	cat >"$dir/gc.sh" <<GC
#!/usr/bin/env bash
# After the DELETEs: garbage-collect must run with every replica stopped.
set -e
pids=()
$stop
for pid in "\${pids[@]}"; do
	while [[ -e /proc/\$pid ]] && ! grep -q '^State:[[:space:]]*Z' /proc/\$pid/status 2>/dev/null; do sleep 0.02; done
done
$REGBIN garbage-collect $dir/r1.yml --delete-untagged >$dir/gc.log 2>&1
$start
for b in ${backends[*]}; do
	for _ in \$(seq 1 300); do curl -fsS -o /dev/null "http://\$b/v2/" 2>/dev/null && break; sleep 0.02; done
done
GC
	chmod +x "$dir/gc.sh"
	start_haproxy "$dir" /v2/ "${backends[@]}"
	url=$(cat "$dir/haproxy.url")
	log "round $1: $REFNAME ×$REPLICAS (pids $(cat "$dir"/r*.pid | tr '\n' ' ')) behind haproxy $url"
	settle
	# shellcheck disable=SC2086
	$BENCH -url "$url" -name "$REFNAME ×$REPLICAS" -data-dir "$S3_ROOT/ref-$1" -pid "$(cat "$dir/r1.pid")" \
		-cpu "registry=$(cat "$dir"/r*.pid | paste -sd,);S3 server=$VGW_PID;balancer=$(cat "$dir/haproxy.pid")$S3_CPU" \
		-after-delete "$dir/gc.sh" -dd-file "$WORK/dd.bin" $BENCH_ARGS >"$WORK/ref-$1.json" ||
		{ log "kvreg-bench against $REFNAME failed; its figures so far follow"; FAILED=1; }
	stop_haproxy "$dir"
	for f in "$dir"/r*.pid; do kill "$(cat "$f")" 2>/dev/null || true; done
	for f in "$dir"/r*.pid; do wait_gone "$(cat "$f")"; rm -f "$f"; done
	rm -rf "$S3_ROOT/ref-$1"
}

# counters ROUND: one row of the kvreg cluster's counters' table.
counters() {
	local dir=$WORK/kvreg-$1
	awk -v round="$1" '
		FNR == NR { b[$1] = $2; next }
		{ a[$1] = $2 }
		END {
			req = a["http_requests"] - b["http_requests"]
			w = a["kvreg_db_write_transactions_total"] - b["kvreg_db_write_transactions_total"]
			rt = a["kvreg_db_round_trips_total"] - b["kvreg_db_round_trips_total"]
			r = a["kvreg_db_retries_total"] - b["kvreg_db_retries_total"]
			g = a["kvreg_db_conflicts_given_up_total"] - b["kvreg_db_conflicts_given_up_total"]
			s3 = a["s3_requests"] - b["s3_requests"]
			printf "| %s | %d | %d | %d | %.4f | %d | %.1f | %d | %.1f |", round, req, w, r, (w ? r / w : 0), g, (req ? rt / req : 0), s3, (req ? s3 / req : 0)
		}' "$dir/metrics.before" "$dir/metrics.after"
	read -r c0 r0 d0 x0 <"$dir/pgstat.before"
	read -r c1 r1 d1 x1 <"$dir/pgstat.after"
	echo " $((c1 - c0)) | $((r1 - r0)) | $((d1 - d0)) |"
}

note_load
measure_dd
K='' R=''
for ((i = 1; i <= REPEAT; i++)); do
	if ((i % 2)); then run_kvreg "$i"; run_ref "$i"; else run_ref "$i"; run_kvreg "$i"; fi
	K+=${K:+,}$WORK/kvreg-$i.json
	R+=${R:+,}$WORK/ref-$i.json
done

{
	echo "kvreg $DESCRIBE ×$REPLICAS (--replicas, $PGVERSION with fsync on) vs $REFNAME ×$REPLICAS, each behind its own haproxy ($("$HAPROXY" -v | sed -n 1p | cut -d" " -f1-3)), blob bytes in versitygw $VGWVERSION buckets on the same disk${S3_DELAY:+ behind a proxy that waits $S3_DELAY before each request}, blob GETs $( ((REDIRECT)) && echo redirected to presigned URLs || echo served by the registries), $(date -u +%Y-%m-%dT%H:%M:%SZ), $REPEAT round(s)"
	machine_line
	echo "dd bs=1M count=$LARGE_MB conv=fdatasync on the same disk before the rounds: $DD MB/s; memory: one replica of each cluster"
	echo
	$BENCH -compare "$K" -against "$R"
	echo
	echo "kvreg cluster's counters over each run (the $REPLICAS replicas' /metrics summed, before and after; pg_stat_database of the round's database):"
	echo
	echo "| round | HTTP requests | write transactions | retries | retries per write | given up | DB round trips per request | S3 requests | S3 requests per request | PG commits | PG rollbacks | PG deadlocks |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for ((i = 1; i <= REPEAT; i++)); do counters "$i"; done
} | tee "$WORK/table.md"
if [[ -n ${OUT:-} ]]; then
	mkdir -p "$OUT"
	cp "$WORK"/kvreg-*.json "$WORK"/ref-*.json "$WORK/table.md" "$OUT/"
fi
exit "$FAILED"
