# shellcheck shell=bash
# What bench.sh, bench-postgres.sh and bench-cluster.sh share, sourced by
# each from the repository's root: the work directory and its cleanup,
# building kvreg and kvreg-bench, installing the reference registry,
# starting versitygw and PostgreSQL on loopback, waiting for servers, the
# dd and load-average figures of the table's header, and scraping kvreg's
# /metrics. Each script keeps its own environment variables, runs and
# table; these functions read the variables the script set (GO, WORK,
# BENCH, DIST_VERSION, PG_CONF, LARGE_MB) and set the ones they say.

log() { echo "bench: $*" >&2; }

# make_work NAME: a fresh work directory ($WORK) under BENCH_TMPDIR, and
# PIDS, the processes cleanup_common kills.
make_work() {
	WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
	PIDS=()
}

# cleanup_common: kill what PIDS holds, stop PostgreSQL if it runs, and
# remove the work directory unless KEEP=1.
cleanup_common() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [[ -n ${PGDATA:-} && -f $PGDATA/postmaster.pid ]]; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w stop -m fast >/dev/null 2>&1 || true
	fi
	if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}

# large_mb: LARGE_MB, the size of the large push and of dd (512, or what
# -large-mb in BENCH_ARGS says).
large_mb() {
	LARGE_MB=512
	if [[ " $BENCH_ARGS " =~ [[:space:]]-large-mb[[:space:]=]+([0-9]+) ]]; then LARGE_MB=${BASH_REMATCH[1]}; fi
}

# build: kvreg and kvreg-bench into $WORK/bin; sets BENCH (kvreg-bench's
# path) and DESCRIBE (the commit they were built from).
build() {
	mkdir -p "$WORK/bin"
	log "building kvreg and kvreg-bench"
	DESCRIBE=$(git describe --always --dirty 2>/dev/null || echo '?')
	$GO build -o "$WORK/bin/kvreg" ./cmd/kvreg
	$GO build -o "$WORK/bin/kvreg-bench" ./cmd/kvreg-bench
	BENCH=$WORK/bin/kvreg-bench
}

# install_distribution: the reference registry, distribution $DIST_VERSION,
# go installed into a cache the first time; sets REGBIN and REFNAME. It
# fails, after saying why, when it does not install.
install_distribution() {
	local cache=${XDG_CACHE_HOME:-$HOME/.cache}/kvreg-bench/distribution-$DIST_VERSION
	if [[ ! -x $cache/registry ]]; then
		log "installing distribution $DIST_VERSION (go install)"
		mkdir -p "$cache"
		if ! GOBIN=$cache $GO install "github.com/distribution/distribution/v3/cmd/registry@$DIST_VERSION" >"$WORK/dist-install.log" 2>&1; then
			log "distribution $DIST_VERSION did not install:"
			tail -5 "$WORK/dist-install.log" >&2
			return 1
		fi
	fi
	REGBIN=$cache/registry REFNAME="distribution $DIST_VERSION"
}

# wait_gone PID: until the process has exited (a zombie counts as gone).
wait_gone() {
	while [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; do sleep 0.02; done
}

# wait_ok URL: until it answers 200 (30 s at most).
wait_ok() {
	for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# ---- the S3 server ----

# The credentials and region of the versitygw this starts; its buckets are
# directories under S3_ROOT, on the work directory's disk.
S3_KEY=kvregbench S3_SECRET=kvregbench-secret S3_REGION=us-east-1 S3_URL=''

# find_versitygw: VGW, or exit saying how to install it.
find_versitygw() {
	VGW=${VERSITYGW:-$(command -v versitygw || echo "$($GO env GOPATH)/bin/versitygw")}
	if [[ ! -x $VGW ]]; then
		log "versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (or set VERSITYGW)"
		exit 1
	fi
}

# start_versitygw: versitygw on a free loopback port over $WORK/s3; sets
# S3_ROOT, S3_URL, VGWVERSION and VGW_PID.
start_versitygw() {
	local port
	S3_ROOT=$WORK/s3
	mkdir -p "$S3_ROOT"
	port=$($BENCH -free-port)
	S3_URL=http://127.0.0.1:$port
	ROOT_ACCESS_KEY=$S3_KEY ROOT_SECRET_KEY=$S3_SECRET VGW_REGION=$S3_REGION \
		"$VGW" --port "127.0.0.1:$port" --keep-alive --quiet posix "$S3_ROOT" >"$WORK/versitygw.log" 2>&1 &
	PIDS+=("$!")
	VGW_PID=$!
	for _ in $(seq 1 300); do curl -s -o /dev/null "$S3_URL" && break; sleep 0.1; done
	VGWVERSION=$("$VGW" --version 2>/dev/null | sed -n "s/^Version *: *//p")
	log "versitygw $VGWVERSION on $S3_URL over $S3_ROOT"
}

# delay_s3: with S3_DELAY set (a Go duration, e.g. 10ms), a kvreg-bench
# -delay-proxy in front of the S3 server, so that every request to the
# bucket (the registries' and, through presigned URLs, the clients') waits
# that long first, as a round trip to an S3 service over a network would:
# S3_URL becomes the proxy's. S3_CPU is the proxy's -cpu group, to append
# to a -cpu value (empty without a delay). Call it after start_versitygw.
delay_s3() {
	S3_CPU=''
	[[ -n ${S3_DELAY:-} ]] || return 0
	"$BENCH" -delay-proxy "$S3_URL" -delay "$S3_DELAY" >"$WORK/delay-proxy.url" 2>"$WORK/delay-proxy.log" &
	PIDS+=("$!")
	S3_CPU=";S3 delay proxy=$!"
	for _ in $(seq 1 100); do [[ -s $WORK/delay-proxy.url ]] && break; sleep 0.1; done
	if [[ ! -s $WORK/delay-proxy.url ]]; then log "the S3 delay proxy did not start"; cat "$WORK/delay-proxy.log" >&2; exit 1; fi
	S3_URL=$(cat "$WORK/delay-proxy.url")
	log "S3 through a proxy that waits $S3_DELAY before each request: $S3_URL"
}

# ---- PostgreSQL ----

# find_postgres: PGBIN, the newest of Debian's PostgreSQL, or exit.
find_postgres() {
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [[ -z $PGBIN || ! -x $PGBIN/initdb ]]; then log "PostgreSQL is not installed (apt-get install postgresql)"; exit 1; fi
}

# as_pg runs a command as the postgres user when run as root.
as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }

# start_postgres: a PostgreSQL cluster in $WORK/pg on a free loopback port,
# with a real deployment's durability (fsync, synchronous_commit and
# full_page_writes on) and PG_CONF's lines; sets PGDATA, PGPORT and
# PGVERSION. cleanup_common stops it.
start_postgres() {
	chmod 755 "$WORK"
	PGDATA=$WORK/pg/data
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
}

# psql_q SQL [DB]: one query, its rows unaligned.
psql_q() { "$PGBIN/psql" -X -q -t -A -h 127.0.0.1 -p "$PGPORT" -U postgres -d "${2:-postgres}" -c "$1"; }

# pg_stat DB: "commits rollbacks deadlocks conflicts" of the database.
pg_stat() { psql_q "SELECT xact_commit, xact_rollback, deadlocks, conflicts FROM pg_stat_database WHERE datname = '$1'" | tr '|' ' '; }

# scrape URL: the counters of kvreg's /metrics the scripts report, one
# "name value" a line.
scrape() {
	curl -fsS "$1/metrics" | awk '
		/^kvreg_db_[a-z_]+_total / { v[$1] = $2 }
		/^kvreg_blob_store_requests_total\{/ { s3 += $2 }
		/^kvreg_http_requests_total\{/ { http += $2 }
		END { for (k in v) print k, v[k]; print "s3_requests", s3 + 0; print "http_requests", http + 0 }'
}

# ---- the header of the table ----

# note_load: LOAD_BEFORE, logged with the cores and the disk.
note_load() {
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	log "load average: $LOAD_BEFORE; $(nproc) cores; disk of $WORK: $(df --output=source,fstype "$WORK" | tail -1 | tr -s ' ')"
}

# measure_dd: DD, the MB/s of dd writing LARGE_MB MiB to the work
# directory's disk with fdatasync, logged.
measure_dd() {
	local out
	out=$(dd if=/dev/zero of="$WORK/dd.bin" bs=1M count="$LARGE_MB" conv=fdatasync 2>&1 | tail -1)
	rm -f "$WORK/dd.bin"
	# "536870912 bytes (537 MB, 512 MiB) copied, 1.23 s, 436 MB/s"
	DD=$(awk '{ printf "%.1f\n", $1 / $(NF-3) / 1e6 }' <<<"$out")
	log "dd bs=1M count=$LARGE_MB conv=fdatasync: $DD MB/s"
}

# settle: before each run, let the machine finish what the run before it
# left behind, so that no registry is charged for another's writes: the
# page cache's dirty pages (the last run's large blob and deleted bucket,
# a few hundred MB) written back, and, when this script started a
# PostgreSQL, a checkpoint. It waits 60 s at most, then logs what is left.
settle() {
	sync
	if [[ -n ${PGPORT:-} ]]; then psql_q CHECKPOINT >/dev/null; fi
	local kb
	for _ in $(seq 1 600); do
		kb=$(awk '/^(Dirty|Writeback):/ { kb += $2 } END { print kb + 0 }' /proc/meminfo)
		((kb < 16384)) && return 0
		sleep 0.1
	done
	log "settle: $kb KiB still dirty or under writeback after 60 s"
}

# machine_line: the table's line on the machine and its load.
machine_line() {
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo); disk $(df --output=source,fstype "$WORK" | tail -1 | tr -s ' '); load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
}
