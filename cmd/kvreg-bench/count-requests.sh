#!/usr/bin/env bash
# make count-requests: the database statements and S3 requests one kvreg
# replica makes per API request, counted from its own /metrics: one
# `kvreg serve --replicas --blob-redirect` on a PostgreSQL database and a
# versitygw bucket (as bench-cluster.sh starts them), driven by curl one
# request at a time (a push as docker sends it: HEAD, POST, PATCH, PUT per
# blob, then the manifest; a pull; HEADs; a DELETE), with /metrics scraped
# right before and right after each request. The figures are per request,
# less what a scrape alone costs (measured first, between two scrapes).
#
# Environment:
#   LAYER_MB   size of the large layer (default 20: three S3 parts of 8 MiB)
#   KEEP       1: keep the work directory
set -euo pipefail

cd "$(dirname "$0")/../.."
GO=${GO:-go}
LAYER_MB=${LAYER_MB:-20}
log() { echo "count: $*" >&2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z $PGBIN || ! -x $PGBIN/initdb ]]; then log "PostgreSQL is not installed (apt-get install postgresql)"; exit 1; fi
VGW=${VERSITYGW:-$(command -v versitygw || echo "$($GO env GOPATH)/bin/versitygw")}
if [[ ! -x $VGW ]]; then log "versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"; exit 1; fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvreg-count.XXXXXX")
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
wait_ok() {
	for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

mkdir -p "$WORK/bin"
$GO build -o "$WORK/bin/kvreg" ./cmd/kvreg
$GO build -o "$WORK/bin/kvreg-bench" ./cmd/kvreg-bench
BENCH=$WORK/bin/kvreg-bench

S3_KEY=kvregbench S3_SECRET=kvregbench-secret S3_REGION=us-east-1
mkdir -p "$WORK/s3/count"
port=$($BENCH -free-port)
S3_URL=http://127.0.0.1:$port
ROOT_ACCESS_KEY=$S3_KEY ROOT_SECRET_KEY=$S3_SECRET VGW_REGION=$S3_REGION \
	"$VGW" --port "127.0.0.1:$port" --keep-alive --quiet posix "$WORK/s3" >"$WORK/versitygw.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 300); do curl -s -o /dev/null "$S3_URL" && break; sleep 0.1; done

PGPORT=$($BENCH -free-port)
mkdir -p "$WORK/pg/sock"
if ((EUID == 0)); then chown -R postgres: "$WORK/pg"; fi
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; exit 1; }
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK/pg/sock'
CONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/log" -w -t 60 start >/dev/null

port=$($BENCH -free-port)
URL=http://127.0.0.1:$port
AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET \
	"$WORK/bin/kvreg" serve --replicas --addr "127.0.0.1:$port" --root "$WORK/root" \
	--db "postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable" \
	--blob-store "s3://count?endpoint=$S3_URL&region=$S3_REGION&path-style=true" --blob-redirect 2>"$WORK/serve.log" &
PIDS+=("$!")
wait_ok "$URL/readyz" || { cat "$WORK/serve.log" >&2; exit 1; }

# scrape: "name value" lines of the counters counted here.
scrape() {
	curl -fsS "$URL/metrics" | awk '
		/^kvreg_db_(round_trips|write_transactions|retries)_total / { print $1, $2 }
		/^kvreg_blob_store_requests_total\{/ { match($1, /op="[^"]*"/); print "s3:" substr($1, RSTART + 4, RLENGTH - 5), $2 }'
}
# diff BEFORE AFTER: "name delta" for what changed.
diff_counts() {
	awk 'FNR == NR { b[$1] = $2; next } { d = $2 - b[$1]; if (d) print $1, d }' "$1" "$2"
}
scrape >"$WORK/b0"
scrape >"$WORK/b1"
diff_counts "$WORK/b0" "$WORK/b1" >"$WORK/scrape-cost"

# step LABEL CURL-ARGS...: one request, its counts less a scrape's, as a table row.
step() {
	local label=$1 code
	shift
	scrape >"$WORK/before"
	code=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@")
	scrape >"$WORK/after"
	diff_counts "$WORK/before" "$WORK/after" >"$WORK/delta"
	awk -v label="$label" -v code="$code" '
		FNR == NR { c[$1] = $2; next }
		{ d[$1] = $2 - c[$1] }
		END {
			rt = d["kvreg_db_round_trips_total"] + 0; w = d["kvreg_db_write_transactions_total"] + 0; r = d["kvreg_db_retries_total"] + 0
			s3 = ""; n = 0
			for (k in d) if (k ~ /^s3:/ && d[k]) { s3 = s3 (s3 ? ", " : "") substr(k, 4) " " d[k]; n += d[k] }
			printf "| %s | %s | %d | %d | %d | %d | %s |\n", label, code, rt, w, r, n, s3
		}' "$WORK/scrape-cost" "$WORK/delta"
}
location() { tr -d '\r' <"$WORK/headers" | awk 'tolower($1) == "location:" { print $2 }'; }

REPO=count/app
# push_blob FILE NAME: a blob pushed as docker pushes it.
push_blob() {
	local f=$1 name=$2 dg loc sep
	dg=sha256:$(sha256sum "$f" | cut -d' ' -f1)
	step "push $name: HEAD (absent)" -I "$URL/v2/$REPO/blobs/$dg"
	step "push $name: POST (start upload)" -X POST "$URL/v2/$REPO/blobs/uploads/"
	loc=$(location)
	[[ $loc == /* ]] && loc=$URL$loc
	step "push $name: PATCH ($(stat -c %s "$f") bytes)" -X PATCH -H 'Content-Type: application/octet-stream' --data-binary "@$f" "$loc"
	loc=$(location)
	[[ $loc == /* ]] && loc=$URL$loc
	if [[ $loc == *\?* ]]; then sep='&'; else sep='?'; fi
	step "push $name: PUT (commit)" -X PUT "$loc${sep}digest=$dg"
	echo "$dg" >"$WORK/$name.digest"
}

echo '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$WORK/config.json"
head -c $((1 << 20)) /dev/urandom >"$WORK/small.bin"
head -c $((LAYER_MB << 20)) /dev/urandom >"$WORK/large.bin"

echo "Per request, one kvreg replica (--replicas --blob-redirect; PostgreSQL, versitygw bucket), from its /metrics"
echo "less a scrape's own cost ($(tr '\n' ' ' <"$WORK/scrape-cost"| sed 's/ $//'); none is 0):"
echo
echo "| request | status | DB round trips | DB write transactions | DB retries | S3 requests | S3 requests by operation |"
echo "|---|---|---:|---:|---:|---:|---|"
push_blob "$WORK/small.bin" "layer 1 MiB"
push_blob "$WORK/large.bin" "layer $LAYER_MB MiB"
push_blob "$WORK/config.json" "config"
cat >"$WORK/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$(cat "$WORK/config.digest")","size":$(stat -c %s "$WORK/config.json")},
"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$(cat "$WORK/layer 1 MiB.digest")","size":$(stat -c %s "$WORK/small.bin")},
{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$(cat "$WORK/layer $LAYER_MB MiB.digest")","size":$(stat -c %s "$WORK/large.bin")}]}
JSON
MDG=sha256:$(sha256sum "$WORK/manifest.json" | cut -d' ' -f1)
step "push manifest: PUT by tag" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$WORK/manifest.json" "$URL/v2/$REPO/manifests/v1"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
step "pull: HEAD manifest by tag" -I -H "$ACCEPT" "$URL/v2/$REPO/manifests/v1"
step "pull: GET manifest by tag" -H "$ACCEPT" "$URL/v2/$REPO/manifests/v1"
step "pull: GET manifest by digest" -H "$ACCEPT" "$URL/v2/$REPO/manifests/$MDG"
SDG=$(cat "$WORK/layer 1 MiB.digest")
step "pull: GET blob (307 to a presigned URL)" "$URL/v2/$REPO/blobs/$SDG"
step "HEAD blob (present, first in the pin window)" -I "$URL/v2/$REPO/blobs/$SDG"
step "HEAD blob (present, again)" -I "$URL/v2/$REPO/blobs/$SDG"
step "DELETE manifest (frees 3 blobs)" -X DELETE "$URL/v2/$REPO/manifests/$MDG"
