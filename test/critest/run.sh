#!/usr/bin/env bash
# Runs critest (kubernetes-sigs/cri-tools) against a cricketd started on
# temporary directories, with no network: the images critest pulls come from a
# local docker-registry on 127.0.0.1 filled by mirror.py (stand-ins built from
# busybox-static), and cricketd maps registry.k8s.io and gcr.io to it with
# image.registries.<host>.location. Exits 77 (ctest SKIP_RETURN_CODE) when
# critest v1.36.0 is absent: it is not a Debian package (contrib/dev.sh test
# builds it, and ginkgo, from the Go module proxy into the tools cache).
#
# Usage: run.sh [serial|websocket|parallel|next]
#   serial     the suite on one ginkgo node (the default)
#   websocket  the same with -websocket-exec -websocket-attach
#              -websocket-portforward (streaming over WebSocket, not SPDY)
#   next       critest v1.37.0, only its image-volume and CRI metrics specs
#   parallel   -parallel 4: critest runs the ginkgo binary (it must be on
#              PATH, or next to critest) with 4 nodes; Serial specs still
#              run alone, at the end
#
# Environment:
#   CRICKETD               cricketd binary (required)
#   CRITEST                critest binary; default: the tools cache's
#                          ($CRICKET_TEST_CACHE, /var/cache/cricket-test)
#                          cri-tools-v1.36.0/critest, else critest on PATH
#   CRICKET_CRITEST_FOCUS  ginkgo focus regex; default: the whole suite
#   CRICKET_CRITEST_SKIP   ginkgo skip regex; default: the list below. Set it
#                          to "" to run everything.
#   CRICKET_CRITEST_ARGS   extra critest arguments (word-split)
#
# critest's port tests use fixed host ports 12000-12003 and this script uses
# a fixed bridge and subnet, so runs on one machine are serialized with a lock.
set -euo pipefail

mode=${1:-serial}
# "next": the specs of cri-tools' newest release past v1.36 that v1.36 lacks
# (image volumes, CRI metrics), from critest v1.37.0: the module proxy serves
# no pseudo-versions of cri-tools' main branch, and v1.37.0 was tagged after
# the main commit those specs came from.
want=v1.36.0
env_critest=${CRITEST:-}
if [ "$mode" = next ]; then
    want=v1.37.0
    env_critest=${CRITEST_NEXT:-}
fi
cache_dir=${CRICKET_TEST_CACHE:-/var/cache/cricket-test}/cri-tools-$want
critest=$env_critest
if [ -z "$critest" ]; then
    if [ -x "$cache_dir/critest" ]; then
        critest=$cache_dir/critest
    else
        critest=$(command -v critest || true)
    fi
fi
if [ -z "$critest" ] || [ ! -x "$critest" ]; then
    echo "critest not found (contrib/dev.sh test builds it): skipped"
    exit 77
fi
version=$("$critest" --version 2>/dev/null | sed -n 's/^critest version: *//p' | head -n1)
if [ "$version" != "$want" ]; then
    echo "$critest is critest ${version:-of unknown version}, not $want: skipped"
    exit 77
fi
mode_args=()
case "$mode" in
serial) ;;
websocket) mode_args=(-websocket-exec -websocket-attach -websocket-portforward) ;;
next) ;;
parallel)
    # critest execs "ginkgo" from PATH for its parallel mode.
    PATH=$(dirname "$critest"):$PATH
    if ! command -v ginkgo >/dev/null 2>&1; then
        echo "ginkgo not found (contrib/dev.sh test builds it): skipped"
        exit 77
    fi
    mode_args=(-parallel 4)
    ;;
*)
    echo "usage: run.sh [serial|websocket|parallel]" >&2
    exit 2
    ;;
esac
crictl=${CRICTL:-$(dirname "$critest")/crictl}
[ -x "$crictl" ] || crictl=$(command -v crictl || true)
cricketd=${CRICKETD:?CRICKETD must point at the cricketd binary}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Specs skipped by default, one regex each, with the reason. critest's spec
# names are matched as "<Describe> <Context> <It>" text.
skips=(
    # The image is pinned by digest (test-image-digest@sha256:9700f9a2...): a
    # stand-in built here cannot have that digest, and no test reaches gcr.io.
    "public image with digest should be pulled and removed"
    # The spec masks /bin/ls and expects "sh -c ls" to fail; Debian's
    # busybox-static shell is built standalone (runs applets in-process,
    # never exec()s /bin/ls), so with the stand-in image ls always works.
    "runtime should support MaskedPaths"
)
# Specs critest itself skips, with the reason it prints (run.sh's summary
# lists each one), all true of this machine for any runtime:
#   - AppArmor (9): "AppArmor is disabled on this host" (no AppArmor in the
#     kernel); SELinux specs are not even registered without SELinux.
#   - benchmarks (6): registered, but run only with critest -benchmark.
# The user namespace specs (6) run: the work dir (cricketd's root) is 0711
# so a pod's mapped root can walk to its rootfs, and Status then reports
# user_namespaces.
default_skip=$(IFS='|'; echo "${skips[*]}")
focus=${CRICKET_CRITEST_FOCUS:-}
skip=${CRICKET_CRITEST_SKIP-$default_skip}
if [ "$mode" = next ] && [ -z "$focus" ]; then
    focus="Image Volume|runtime should support metrics operations"
fi

bridge=crkt-critest0
subnet=10.233.77.0/24

# One run at a time (fixed host ports, bridge and subnet).
exec 9>/tmp/cricket-critest.lock
flock 9

work=$(mktemp -d /tmp/cricket-critest-XXXXXX)
chmod 0711 "$work" # user namespace pods: the mapped root walks to its rootfs
pid=
MIRROR_PID=
cleanup() {
    # Pods a failed spec left behind go through the CRI first (crictl, from
    # critest's directory, when there), then the daemon (it tears pods down
    # through CNI), then the registry, both by PID; then whatever is still
    # there: containers in the private runc root, mounts under $work, and
    # what the bridge plugin left on the host.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        if [ -n "$crictl" ]; then
            timeout 120 "$crictl" --runtime-endpoint "unix://$work/cricket.sock" rmp --all \
                --force >/dev/null 2>&1 || true
        fi
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    if [ -n "$MIRROR_PID" ] && kill -0 "$MIRROR_PID" 2>/dev/null; then
        kill -TERM "$MIRROR_PID"
        # Not our child (mirror.py started it): poll until it is gone.
        for _ in $(seq 100); do kill -0 "$MIRROR_PID" 2>/dev/null || break; sleep 0.05; done
    fi
    local id m
    if [ -d "$work/runc" ]; then
        for id in $(runc --root "$work/runc" list -q 2>/dev/null); do
            runc --root "$work/runc" delete --force "$id" >/dev/null 2>&1 || true
        done
    fi
    awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A bridge left by a run that was killed hard would keep the old address.
ip link del "$bridge" 2>/dev/null || true
for port in 12000 12001 12002 12003; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "warning: port $port is in use; critest's port specs will fail" >&2
    fi
done

echo "building the image mirror"
/usr/bin/python3 "$here/mirror.py" "$work/mirror"
# shellcheck source=/dev/null
. "$work/mirror/mirror.env"   # MIRROR_HOST, MIRROR_PID
echo "mirror: $MIRROR_HOST (pid $MIRROR_PID)"

mkdir -p "$work/net.d"
cat >"$work/net.d/10-critest.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "cricket-critest", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$work/ipam", "ranges": [[{"subnet": "$subnet"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
cat >"$work/cricket.yaml" <<YAML
listen: unix://$work/cricket.sock
root: $work/root
runroot: $work/run
log_level: debug
runtime:
  handlers:
    runc:
      root: $work/runc
network:
  conf_dir: $work/net.d
image:
  registries:
    "registry.k8s.io":
      location: $MIRROR_HOST
    "gcr.io":
      location: $MIRROR_HOST
    "k8s.gcr.io":
      location: $MIRROR_HOST
  insecure_registries: ["$MIRROR_HOST"]
YAML
"$cricketd" --config "$work/cricket.yaml" >"$work/cricketd.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -S "$work/cricket.sock" ] && break; sleep 0.05; done
if [ ! -S "$work/cricket.sock" ]; then
    echo "cricketd did not come up"
    cat "$work/cricketd.log"
    exit 1
fi

args=("${mode_args[@]}" --runtime-endpoint "unix://$work/cricket.sock" --image-endpoint "unix://$work/cricket.sock"
      --ginkgo.no-color --ginkgo.json-report="$work/report.json")
[ -n "$focus" ] && args+=(--ginkgo.focus "$focus")
[ -n "$skip" ] && args+=(--ginkgo.skip "$skip")
# shellcheck disable=SC2206
args+=(${CRICKET_CRITEST_ARGS:-})

rc=0
echo "critest $version, mode $mode"
start=$(date +%s)
(cd "$work" && "$critest" "${args[@]}") || rc=$?
echo "critest $mode: exit $rc after $(($(date +%s) - start)) s"
if [ -f "$work/report.json" ]; then
    /usr/bin/python3 "$here/summary.py" "$work/report.json" || true
fi
if [ $rc -ne 0 ]; then
    echo "---- cricketd log (warnings and errors) ----"
    grep -E '\b(WARN|ERROR|warn|error)\b' "$work/cricketd.log" | tail -n 200 || true
    if [ -n "${CRICKET_CRITEST_KEEP_LOG:-}" ]; then
        cp "$work/cricketd.log" "$CRICKET_CRITEST_KEEP_LOG"
    fi
fi
exit $rc
