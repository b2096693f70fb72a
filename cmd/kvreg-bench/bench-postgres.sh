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
source cmd/kvreg-bench/lib.sh
GO=${GO:-go}
REPEAT=${REPEAT:-3}
BENCH_ARGS=${BENCH_ARGS:-}
SERVE_ARGS=${SERVE_ARGS:-}

find_postgres

make_work kvreg-bench-pg
trap cleanup_common EXIT
build

# ---- PostgreSQL ----
start_postgres

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
	wait_ok "$url/v2/" || { log "kvreg on $2 did not start"; cat "$dir/serve.log" >&2; exit 1; }
	scrape "$url" >"$dir/metrics.before"
	if [[ $2 == postgres ]]; then pg_stat "bench$1" >"$dir/pgstat.before"; fi
	settle
	# shellcheck disable=SC2086
	local cpu="registry=$pid"
	if [[ $2 == postgres ]]; then cpu+=";database=$(head -1 "$PGDATA/postmaster.pid")"; fi
	$BENCH -url "$url" -name "kvreg on $2" -data-dir "$dir/data" -pid "$pid" -dd-file "$WORK/dd.bin" \
		-cpu "$cpu" $BENCH_ARGS >"$WORK/$2-$1.json" ||
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
		read -r c0 r0 d0 _ <"$dir/pgstat.before"
		read -r c1 r1 d1 _ <"$dir/pgstat.after"
		echo " $((c1 - c0)) | $((r1 - r0)) | $((d1 - d0)) |"
	else
		echo " | | |"
	fi
}

FAILED=0
note_load
B='' P=''
for ((i = 1; i <= REPEAT; i++)); do
	if ((i % 2)); then run_kvreg "$i" bolt; run_kvreg "$i" postgres; else run_kvreg "$i" postgres; run_kvreg "$i" bolt; fi
	B+=${B:+,}$WORK/bolt-$i.json
	P+=${P:+,}$WORK/postgres-$i.json
done

{
	echo "kvreg $DESCRIBE on PostgreSQL ($PGVERSION, fsync on, synchronous_commit on${PG_CONF:+; $PG_CONF}) vs on bbolt, $(date -u +%Y-%m-%dT%H:%M:%SZ), $REPEAT round(s)"
	machine_line
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
