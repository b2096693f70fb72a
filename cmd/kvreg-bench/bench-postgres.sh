#!/usr/bin/env bash
# make bench-postgres: the same seeded workload (cmd/kvreg-bench) against
# kvreg on bbolt and kvreg on PostgreSQL, one after the other in one run,
# on this machine, then each figure side by side with the ratio
# (PostgreSQL / bbolt), and from /metrics, scraped right before and right
# after each run: write transactions, reruns after conflicts (the retry
# rate) and round trips to PostgreSQL per request; from pg_stat_database:
# deadlocks and serialization conflicts.
#
# PostgreSQL is Debian's (initdb and pg_ctl from /usr/lib/postgresql/<v>/bin),
# started in the work directory as the postgres user when run as root,
# with a real deployment's durability: fsync on, synchronous_commit on,
# full_page_writes on. Each round gets a fresh database; kvreg's blob bytes
# stay in its --root on the same disk as bbolt's.
#
# Environment:
#   BENCH_ARGS     extra kvreg-bench flags for every run
#   SERVE_ARGS     extra kvreg serve flags for every run (e.g.
#                  "--max-uploads-per-client 0" for more than 32 uploads at
#                  once from the one client address)
#   REPEAT         rounds (default 3); each round runs both, in alternating
#                  order; the table shows the median of each figure
#   PG_CONF        more postgresql.conf lines (e.g. "max_pred_locks_per_page = 64")
#   BENCH_TMPDIR   where the data directories go (default: $TMPDIR or /tmp)
#   KEEP           1: keep the work directory (logs, JSON results)
#   OUT            a directory to copy the JSON results and the table into
set -euo pipefail

cd "$(dirname "$0")/../.."
GO=${GO:-go}
REPEAT=${REPEAT:-3}
BENCH_ARGS=${BENCH_ARGS:-}
SERVE_ARGS=${SERVE_ARGS:-}

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z $PGBIN || ! -x $PGBIN/initdb ]]; then
	echo "bench-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
	exit 1
fi

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/kvreg-bench-pg.XXXXXX")
chmod 755 "$WORK"
PIDS=()
PGDATA=$WORK/pg/data
as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [[ -f $PGDATA/postmaster.pid ]]; then as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w stop -m fast >/dev/null 2>&1 || true; fi
	if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

mkdir -p "$WORK/bin"
log "building kvreg and kvreg-bench"
DESCRIBE=$(git describe --always --dirty 2>/dev/null || echo '?')
$GO build -o "$WORK/bin/kvreg" ./cmd/kvreg
$GO build -o "$WORK/bin/kvreg-bench" ./cmd/kvreg-bench
BENCH=$WORK/bin/kvreg-bench

# ---- PostgreSQL ----
PGPORT=$($BENCH -free-port)
mkdir -p "$WORK/pg/sock"
if ((EUID == 0)); then chown -R postgres: "$WORK/pg"; fi
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; exit 1; }
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK/pg/sock'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 300
${PG_CONF:-}
CONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/log" -w -t 60 start >/dev/null
PGVERSION=$("$PGBIN/postgres" --version)
log "$PGVERSION on 127.0.0.1:$PGPORT (fsync on, synchronous_commit on${PG_CONF:+; $PG_CONF})"
psql_q() { "$PGBIN/psql" -X -q -t -A -h 127.0.0.1 -p "$PGPORT" -U postgres -d "${2:-postgres}" -c "$1"; }

# scrape URL: the counters of /metrics this script reports, one "name value" a line.
scrape() {
	curl -fsS "$1/metrics" | awk '
		/^kvreg_db_[a-z_]+_total / { v[$1] = $2 }
		/^kvreg_http_requests_total\{/ { http += $2 }
		END { for (k in v) print k, v[k]; print "http_requests", http + 0 }'
}
wait_up() {
	for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1/v2/" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
pg_stat() { psql_q "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = '$1'" | tr '|' ' '; }

# run_kvreg ROUND DB: DB is bolt or postgres.
run_kvreg() {
	local port pid url dir=$WORK/$2-$1 dbflag=()
	port=$($BENCH -free-port)
	url=http://127.0.0.1:$port
	mkdir -p "$dir"
	if [[ $2 == postgres ]]; then
		psql_q "CREATE DATABASE bench$1" >/dev/null
		dbflag=(--db "postgres://postgres@127.0.0.1:$PGPORT/bench$1?sslmode=disable")
	fi
	# shellcheck disable=SC2086
	"$WORK/bin/kvreg" serve --addr "127.0.0.1:$port" --root "$dir/data" "${dbflag[@]}" $SERVE_ARGS 2>"$dir/serve.log" &
	pid=$!
	PIDS+=("$pid")
	log "round $1: kvreg on $2, $url (pid $pid)"
	wait_up "$url" || { log "kvreg on $2 did not start"; cat "$dir/serve.log" >&2; exit 1; }
	scrape "$url" >"$dir/metrics.before"
	if [[ $2 == postgres ]]; then pg_stat "bench$1" >"$dir/pgstat.before"; fi
	# shellcheck disable=SC2086
	$BENCH -url "$url" -name "kvreg on $2" -data-dir "$dir/data" -pid "$pid" -dd-file "$WORK/dd.bin" \
		$BENCH_ARGS >"$WORK/$2-$1.json" ||
		{ log "kvreg-bench against kvreg on $2 failed; its figures so far follow"; FAILED=1; }
	scrape "$url" >"$dir/metrics.after"
	if [[ $2 == postgres ]]; then pg_stat "bench$1" >"$dir/pgstat.after"; fi
	kill "$pid"
	wait "$pid" || true
	rm -rf "$dir/data"
}

# counters ROUND DB: one row of the database counters' table.
counters() {
	local dir=$WORK/$2-$1
	awk -v round="$1" -v db="$2" '
		FNR == NR { b[$1] = $2; next }
		{ a[$1] = $2 }
		END {
			req = a["http_requests"] - b["http_requests"]
			w = a["kvreg_db_write_transactions_total"] - b["kvreg_db_write_transactions_total"]
			if (!("kvreg_db_round_trips_total" in a)) {
				printf "| %s | %s | %d | n/a | n/a | n/a | n/a | n/a |", round, db, req
				exit
			}
			rt = a["kvreg_db_round_trips_total"] - b["kvreg_db_round_trips_total"]
			r = a["kvreg_db_retries_total"] - b["kvreg_db_retries_total"]
			g = a["kvreg_db_conflicts_given_up_total"] - b["kvreg_db_conflicts_given_up_total"]
			printf "| %s | %s | %d | %d | %d | %.4f | %d | %.1f |", round, db, req, w, r, (w ? r / w : 0), g, (req ? rt / req : 0)
		}' "$dir/metrics.before" "$dir/metrics.after"
	if [[ -f $dir/pgstat.before ]]; then
		read -r c0 r0 d0 <"$dir/pgstat.before"
		read -r c1 r1 d1 <"$dir/pgstat.after"
		echo " $((c1 - c0)) | $((r1 - r0)) | $((d1 - d0)) |"
	else
		echo " | | |"
	fi
}

FAILED=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average: $LOAD_BEFORE; $(nproc) cores; disk of $WORK: $(df --output=source,fstype "$WORK" | tail -1 | tr -s ' ')"
B='' P=''
for ((i = 1; i <= REPEAT; i++)); do
	if ((i % 2)); then run_kvreg "$i" bolt; run_kvreg "$i" postgres; else run_kvreg "$i" postgres; run_kvreg "$i" bolt; fi
	B+=${B:+,}$WORK/bolt-$i.json
	P+=${P:+,}$WORK/postgres-$i.json
done

{
	echo "kvreg $DESCRIBE on PostgreSQL ($PGVERSION, fsync on, synchronous_commit on${PG_CONF:+; $PG_CONF}) vs on bbolt, $(date -u +%Y-%m-%dT%H:%M:%SZ), $REPEAT round(s)"
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo); disk $(df --output=source,fstype "$WORK" | tail -1 | tr -s ' '); load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
	echo
	# The target and met columns are the goals against the reference
	# registry (make bench): not this comparison's.
	$BENCH -compare "$P" -against "$B" | awk -F'|' -v OFS='|' '/^\|/ { NF = 6; $6 = ""; print; next } { print }'
	echo
	echo "Database counters over each run (/metrics before and after; pg_stat_database of the round's database):"
	echo
	echo "| round | db | HTTP requests | write transactions | retries | retries per write | given up | round trips per request | PG commits | PG rollbacks | PG deadlocks |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for ((i = 1; i <= REPEAT; i++)); do counters "$i" postgres; counters "$i" bolt; done
} | tee "$WORK/table.md"
if [[ -n ${OUT:-} ]]; then
	mkdir -p "$OUT"
	cp "$WORK"/bolt-*.json "$WORK"/postgres-*.json "$WORK/table.md" "$OUT/"
fi
exit "$FAILED"
