#!/usr/bin/env bash
# Runs critest (kubernetes-sigs/cri-tools) against a cricketd started on
# temporary directories. Exits 77 (ctest SKIP_RETURN_CODE) when critest is not
# on PATH: it is not a Debian package.
#
# CRICKET_CRITEST_FOCUS and CRICKET_CRITEST_SKIP (ginkgo regexes) pick the
# specs; they default to the areas cricket implements today and widen as
# issues land. Specs that pull images from registry.k8s.io are skipped: no
# test may reach a real registry (a local mirror of critest's images is
# still to be built).
set -euo pipefail

if ! command -v critest >/dev/null 2>&1; then
    echo "critest not on PATH: skipped"
    exit 77
fi
cricketd=${CRICKETD:?CRICKETD must point at the cricketd binary}
focus=${CRICKET_CRITEST_FOCUS:-"runtime should return (version info|runtime conditions)|PodSandbox"}
skip=${CRICKET_CRITEST_SKIP:-"sysctls"}

work=$(mktemp -d /tmp/cricket-critest-XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/net.d"
cat >"$work/net.d/10-critest.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "cricket-critest", "plugins": [
  {"type": "bridge", "bridge": "crkt-critest0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.233.77.0/24"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
cat >"$work/cricket.yaml" <<YAML
listen: unix://$work/cricket.sock
root: $work/root
runroot: $work/run
network:
  conf_dir: $work/net.d
YAML
"$cricketd" --config "$work/cricket.yaml" >"$work/cricketd.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -S "$work/cricket.sock" ] && break; sleep 0.05; done

rc=0
critest --runtime-endpoint "unix://$work/cricket.sock" --image-endpoint "unix://$work/cricket.sock" \
    --ginkgo.focus "$focus" --ginkgo.skip "$skip" --ginkgo.no-color || rc=$?
if [ $rc -ne 0 ]; then
    echo "---- cricketd log ----"
    tail -n 200 "$work/cricketd.log"
fi
exit $rc
