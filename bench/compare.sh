#!/bin/bash
# cricket against Debian's containerd, side by side, in one run (issue 15).
#
#   bench/compare.sh [BUILD_DIR] [compare.py options: -n PODS -p PAR -e EXECS
#                    --baseline OLD_BUILD_DIR --only cricket|containerd|baseline]
#
# Installs what the run needs when it is missing (containerd, runc, the CNI
# plugins, docker-registry, busybox-static: Debian packages), builds cricket
# into BUILD_DIR (default build/) when it has no cricketd, then runs
# bench/compare.py: pod start (sequential and PAR parallel), CPU per pod,
# ExecSync, pulls of three images and their removal, RemoveContainer, idle
# RSS, restart with PODS pods, per-pod PSS; one table with the ratios and
# the issue's goals. Needs root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$(cd "$1" && pwd)
    shift
fi
need=()
for pkg_cmd in containerd:containerd runc:runc docker-registry:docker-registry \
    containernetworking-plugins:/usr/lib/cni/bridge busybox-static:/bin/busybox; do
    pkg=${pkg_cmd%%:*} cmd=${pkg_cmd#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
    # the package starts its own containerd on /run/containerd; the bench runs its own
    systemctl disable --now containerd >/dev/null 2>&1 || true
fi
if [ ! -x "$build/cricketd" ]; then
    cmake -S "$top" -B "$build" >/dev/null
    cmake --build "$build" -j"$(nproc)" >&2
fi
exec /usr/bin/python3 "$top/bench/compare.py" "$build" "$@"
