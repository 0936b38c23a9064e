#!/usr/bin/env bash
# Builds kubelet, kube-apiserver, kubectl and kubeadm from the k8s.io/kubernetes module
# pinned in go.mod (test/node's wrapper module) into a cache outside the
# checkout, reused when present:
#
#   test/node/build.sh [CACHE_DIR]    prints the directory holding the binaries
#
# Default CACHE_DIR: /var/cache/cricket-test/kube-<version>. The binaries are
# version-stamped through -ldflags so `--version` tells the truth. Needs Go
# >= 1.26 and the Go module proxy.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/go.mod")
[ -n "$version" ] || { echo "no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
out=${1:-${CRICKET_TEST_CACHE:-/var/cache/cricket-test}/kube-$version}
major=${version#v}
major=${major%%.*}
minor=$(echo "$version" | cut -d. -f2)

pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor \
-X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$version"

mkdir -p "$out"
cd "$here"
stamped() { # stamped PROG: the cached binary reports the wanted version
    local args=(--version)
    [ "$1" = kubectl ] && args=(version --client)
    [ "$1" = kubeadm ] && args=(version -o short)
    [ -x "$out/$1" ] && "$out/$1" "${args[@]}" 2>/dev/null | grep "$version" >/dev/null
}

for prog in kubelet kube-apiserver kubectl kubeadm; do
    stamped "$prog" && continue
    echo "building $prog $version into $out" >&2
    CGO_ENABLED=0 GOFLAGS=-mod=mod "$go" build -trimpath -ldflags "$ldflags" \
        -o "$out/$prog.tmp" "k8s.io/kubernetes/cmd/$prog"
    mv "$out/$prog.tmp" "$out/$prog"
done
echo "$out"
