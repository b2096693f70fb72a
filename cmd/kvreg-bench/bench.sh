#!/usr/bin/env bash
# make bench: the same seeded workload (cmd/kvreg-bench) against kvreg and
# the reference registry, one after the other in one run, on this machine,
# then each figure side by side with the ratio.
#
# The reference is distribution v3 (`go install .../distribution/v3/cmd/registry`)
# or, if that does not install, Debian's docker-registry (distribution 2.8).
# Its time to give bytes back after a DELETE includes what its docs require:
# stop it, `registry garbage-collect CONFIG --delete-untagged`, start it again.
#
# Environment:
#   BENCH_ARGS     extra kvreg-bench flags for every run (e.g. "-images 32 -large-mb 256")
#   REPEAT         rounds (default 3); each round runs both registries, in
#                  alternating order; the table shows the median of each figure
#   REF            auto (default: v3, else docker-registry) | v3 | docker-registry
#   DIST_VERSION   distribution version for go install (default v3.0.0)
#   BENCH_TMPDIR   where the data directories go (default: $TMPDIR or /tmp);
#                  both registries and dd write there, so to the same disk
#   KEEP           1: keep the work directory (logs, JSON results)
#   OUT            a directory to copy the JSON results and the table into
#   STORE          local (default) | s3: both registries keep blob bytes in
#                  buckets of one versitygw (go install
#                  github.com/versity/versitygw/cmd/versitygw@v1.8.0) that
#                  this script starts on loopback over a directory on the
#                  same disk; kvreg with --blob-store s3://..., the reference
#                  with its s3 storage driver. The bytes given back after a
#                  DELETE are watched in each bucket's directory.
#   REDIRECT       with STORE=s3: 1 (default) has both registries answer blob
#                  GETs with a redirect to a presigned URL of the bucket, as
#                  the reference does by default (kvreg --blob-redirect);
#                  0 has both send the bytes themselves (the reference's
#                  redirect: disable: true)
set -euo pipefail

cd "$(dirname "$0")/../.."
source cmd/kvreg-bench/lib.sh
GO=${GO:-go}
REF=${REF:-auto}
DIST_VERSION=${DIST_VERSION:-v3.0.0}
REPEAT=${REPEAT:-3}
STORE=${STORE:-local}
REDIRECT=${REDIRECT:-1}
BENCH_ARGS=${BENCH_ARGS:-}
# -large-mb in BENCH_ARGS sets the dd size too.
large_mb
case $STORE in local | s3) ;; *) log "STORE must be local or s3, not $STORE"; exit 1 ;; esac
if [[ $STORE == s3 ]]; then find_versitygw; fi

make_work kvreg-bench
cleanup() {
	if [[ -f $WORK/ref.pid ]]; then kill "$(cat "$WORK/ref.pid")" 2>/dev/null || true; fi
	cleanup_common
}
trap cleanup EXIT

# ---- build and install ----
build

# ---- the S3 server (STORE=s3) ----
S3_ROOT=$WORK/s3
if [[ $STORE == s3 ]]; then start_versitygw; fi

REGBIN='' REFNAME='' FAILED=0
if [[ $REF == auto || $REF == v3 ]]; then
	install_distribution || [[ $REF == auto ]] || exit 1
fi
if [[ -z $REGBIN ]]; then
	if ! command -v docker-registry >/dev/null; then
		log "installing Debian's docker-registry"
		apt-get update -qq && apt-get install -y -qq docker-registry >/dev/null
	fi
	REGBIN=$(command -v docker-registry)
	REFNAME="docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null || echo '?')"
fi
log "reference: $REFNAME ($REGBIN)"

# run_kvreg ROUND
run_kvreg() {
	local port pid dir=$WORK/kvreg-$1
	port=$($BENCH -free-port)
	mkdir -p "$dir"
	local store=() watch=$dir/data
	if [[ $STORE == s3 ]]; then
		mkdir "$S3_ROOT/kvreg-$1"
		store=(--blob-store "s3://kvreg-$1?endpoint=$S3_URL&region=$S3_REGION&path-style=true")
		if [[ $REDIRECT == 1 ]]; then store+=(--blob-redirect); fi
		watch=$S3_ROOT/kvreg-$1
	fi
	AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET \
		"$WORK/bin/kvreg" serve --addr "127.0.0.1:$port" --root "$dir/data" "${store[@]}" 2>"$dir/serve.log" &
	pid=$!
	PIDS+=("$pid")
	log "round $1: kvreg on 127.0.0.1:$port (pid $pid)${store[1]:+, blobs in ${store[1]}}"
	settle
	# shellcheck disable=SC2086
	$BENCH -url "http://127.0.0.1:$port" -name kvreg -data-dir "$watch" -pid "$pid" -dd-file "$WORK/dd.bin" \
		-cpu "registry=$pid${VGW_PID:+;S3 server=$VGW_PID}" $BENCH_ARGS >"$WORK/kvreg-$1.json" ||
		{ log "kvreg-bench against kvreg failed; its figures so far follow"; FAILED=1; }
	kill "$pid"
	wait "$pid" || true
	rm -rf "$dir/data" "$S3_ROOT/kvreg-$1"
}

# run_ref ROUND
run_ref() {
	local port pid dir=$WORK/ref-$1
	port=$($BENCH -free-port)
	mkdir -p "$dir/data"
	local driver="  filesystem:
    rootdirectory: $dir/data" watch=$dir/data
	if [[ $STORE == s3 ]]; then
		mkdir "$S3_ROOT/ref-$1"
		driver="  s3:
    accesskey: $S3_KEY
    secretkey: $S3_SECRET
    region: $S3_REGION
    regionendpoint: $S3_URL
    forcepathstyle: true
    secure: false
    bucket: ref-$1"
		if [[ $REDIRECT == 0 ]]; then driver+="
  redirect:
    disable: true"; fi
		watch=$S3_ROOT/ref-$1
	fi
	cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
$driver
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CONFIG
	# Started detached, so that the after-delete script can stop and start it.
	local start="setsid $REGBIN serve $dir/config.yml >>$dir/serve.log 2>&1 & echo \$! >$WORK/ref.pid"
	sh -c "$start"
	cat >"$dir/gc.sh" <<GC
#!/usr/bin/env bash
# After the DELETEs: garbage-collect must run with the registry stopped.
set -e
pid=\$(cat $WORK/ref.pid)
kill "\$pid"
while [[ -e /proc/\$pid ]] && ! grep -q '^State:[[:space:]]*Z' /proc/\$pid/status 2>/dev/null; do sleep 0.02; done
$REGBIN garbage-collect $dir/config.yml --delete-untagged >$dir/gc.log 2>&1
$start
GC
	chmod +x "$dir/gc.sh"
	log "round $1: $REFNAME on 127.0.0.1:$port (pid $(cat "$WORK/ref.pid"))"
	settle
	# shellcheck disable=SC2086
	$BENCH -url "http://127.0.0.1:$port" -name "$REFNAME" -data-dir "$watch" -pid "$(cat "$WORK/ref.pid")" \
		-cpu "registry=$(cat "$WORK/ref.pid")${VGW_PID:+;S3 server=$VGW_PID}" \
		-after-delete "$dir/gc.sh" -dd-file "$WORK/dd.bin" $BENCH_ARGS >"$WORK/ref-$1.json" ||
		{ log "kvreg-bench against $REFNAME failed; its figures so far follow"; FAILED=1; }
	pid=$(cat "$WORK/ref.pid")
	kill "$pid"
	wait_gone "$pid"
	rm -f "$WORK/ref.pid"
	rm -rf "$dir/data" "$S3_ROOT/ref-$1"
}

note_load
# dd on the same disk, once before the rounds for the header. Each run also
# has kvreg-bench run dd right before and right after its large push
# (-dd-file): the table compares the large push with those.
measure_dd
K='' R=''
for ((i = 1; i <= REPEAT; i++)); do
	if ((i % 2)); then run_kvreg "$i"; run_ref "$i"; else run_ref "$i"; run_kvreg "$i"; fi
	K+=${K:+,}$WORK/kvreg-$i.json
	R+=${R:+,}$WORK/ref-$i.json
done

{
	echo "kvreg $DESCRIBE vs $REFNAME${S3_URL:+, blob bytes in versitygw buckets on the same disk, blob GETs $( ((REDIRECT)) && echo redirected to presigned URLs || echo served by the registries)}, $(date -u +%Y-%m-%dT%H:%M:%SZ), $REPEAT round(s)"
	machine_line
	echo "dd bs=1M count=$LARGE_MB conv=fdatasync on the same disk before the rounds: $DD MB/s"
	echo
	$BENCH -compare "$K" -against "$R"
} | tee "$WORK/table.md"
if [[ -n ${OUT:-} ]]; then
	mkdir -p "$OUT"
	cp "$WORK"/kvreg-*.json "$WORK"/ref-*.json "$WORK/table.md" "$OUT/"
fi
exit "$FAILED"
