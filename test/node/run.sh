#!/bin/sh
# ctest's `node` layer: builds (or reuses) kubelet with build.sh, then runs
# every test/node/test_*.py against it. Exits 77 (skipped, reason printed) only where
# Go >= 1.26 is missing; the e2e environment (CRICKETD, CRICKET_CONMON, ...)
# comes from ctest.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ -z "${KUBE_BIN:-}" ]; then
    if ! v=$("$go" env GOVERSION 2>/dev/null); then
        echo "skipped: no Go toolchain (kubelet is built from modules with Go >= 1.26)"
        exit 77
    fi
    minor=$(echo "$v" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
    if [ -z "$minor" ] || [ "$minor" -lt 26 ]; then
        echo "skipped: $v found, kubelet needs Go >= 1.26"
        exit 77
    fi
    start=$(date +%s)
    KUBE_BIN=$(GO="$go" "$here/build.sh" | tail -n1)
    echo "kubelet from $KUBE_BIN (build.sh took $(($(date +%s) - start)) s)"
    export KUBE_BIN
fi
exec /usr/bin/python3 -m pytest -v -p no:cacheprovider --durations=10 "$here"/test_*.py
