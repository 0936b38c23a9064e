#!/usr/bin/env bash
# cricket's developer entry point (Debian 12, as root).
#
#   contrib/dev.sh run [cricketd flags]   install deps, build, run cricketd in the foreground
#   contrib/dev.sh test                   install test deps, build, run every test layer
#   contrib/dev.sh lint                   build, then only the lint step
#   contrib/dev.sh deps [run|test]        only install packages
#
# `test` runs: the plain build, the lint step (clang-format, the
# banned-function check, cppcheck, clang-tidy on that build's
# compile_commands.json), ctest (unit, e2e, critest when on PATH) on it, the
# same under ASan/UBSan, then the unit tests under valgrind. It exits
# non-zero on the first failing layer.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

BUILD_DEPS=(cmake gcc make pkg-config libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
    protobuf-compiler libcurl4-openssl-dev libssl-dev libarchive-dev liblmdb-dev libseccomp-dev
    libcap-dev libyaml-dev libjansson-dev zlib1g-dev libmicrohttpd-dev libgnutls28-dev python3)
RUN_DEPS=(runc containernetworking-plugins iptables iproute2)
TEST_DEPS=(libcmocka-dev python3 python3-pytest python3-grpcio python3-protobuf python3-prometheus-client valgrind
    clang-format clang-tidy cppcheck docker-registry skopeo umoci busybox-static apache2-utils zstd util-linux procps
    psmisc openssl dpkg-dev debootstrap etcd-server crun)

log() { printf '==> %s\n' "$*" >&2; }

# Test tools from the Go module proxy, built into a cache outside the
# checkout and reused when present: crictl (e2e crictl flows, the .deb
# check), critest (the CRI validation suite, ctest -L critest) and ginkgo
# (critest -parallel runs it). Needs Go >= 1.26; without it those tests skip
# and say why.
CRI_TOOLS_VERSION=v1.36.0
CRI_TOOLS_NEXT_VERSION=v1.37.0
GINKGO_VERSION=v2.28.1 # the version cri-tools v1.36.0's go.mod requires
TOOLS_CACHE=${CRICKET_TEST_CACHE:-/var/cache/cricket-test}
GO=$(command -v go || echo /usr/local/go/bin/go)

go_ok() {
    [ -x "$GO" ] || return 1
    local v
    v=$("$GO" env GOVERSION 2>/dev/null) || return 1
    v=${v#go}
    [ "$(printf '%s\n1.26\n' "${v%.*}" | sort -V | head -n1)" = 1.26 ]
}

# critest has no main package (its suite is a Go test), so `go install`
# cannot build it: download the module from the proxy and link its test
# binary with `go test -c`, stamping the version as cri-tools' Makefile does.
build_critest() { # build_critest DIR [VERSION]
    local dir=$1 ver=${2:-$CRI_TOOLS_VERSION} mod
    mod=$(GOFLAGS=-mod=mod "$GO" mod download -json "sigs.k8s.io/cri-tools@$ver" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$mod" ] || { log "cri-tools $ver: no module directory"; return 1; }
    (cd "$mod" && GOFLAGS=-mod=mod "$GO" test -c -o "$dir/critest" \
        -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$ver" ./cmd/critest)
}

install_cri_tools() {
    local dir="$TOOLS_CACHE/cri-tools-$CRI_TOOLS_VERSION"
    if [ ! -x "$dir/crictl" ] || [ ! -x "$dir/critest" ] || [ ! -x "$dir/ginkgo" ] ||
        ! "$dir/critest" --version 2>/dev/null | grep -qx "critest version: $CRI_TOOLS_VERSION"; then
        if ! go_ok; then
            log "no Go >= 1.26: crictl/critest not installed (their tests skip)"
            return 0
        fi
        mkdir -p "$dir"
    fi
    if [ ! -x "$dir/crictl" ]; then
        log "go install sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION into $dir"
        GOBIN="$dir" GOFLAGS=-mod=mod "$GO" install \
            "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
    fi
    if [ ! -x "$dir/critest" ] ||
        ! "$dir/critest" --version 2>/dev/null | grep -qx "critest version: $CRI_TOOLS_VERSION"; then
        log "critest $CRI_TOOLS_VERSION (go test -c from the module proxy) into $dir"
        build_critest "$dir"
    fi
    if [ ! -x "$dir/ginkgo" ]; then
        log "go install github.com/onsi/ginkgo/v2/ginkgo@$GINKGO_VERSION into $dir"
        GOBIN="$dir" GOFLAGS=-mod=mod "$GO" install \
            "github.com/onsi/ginkgo/v2/ginkgo@$GINKGO_VERSION"
    fi
    export CRICTL="$dir/crictl" CRITEST="$dir/critest"
    # critest-next: v1.37.0's image-volume and CRI metrics specs
    local next="$TOOLS_CACHE/cri-tools-$CRI_TOOLS_NEXT_VERSION"
    if [ ! -x "$next/critest" ] ||
        ! "$next/critest" --version 2>/dev/null | grep -qx "critest version: $CRI_TOOLS_NEXT_VERSION"; then
        go_ok || return 0
        log "critest $CRI_TOOLS_NEXT_VERSION (go test -c from the module proxy) into $next"
        mkdir -p "$next"
        build_critest "$next" "$CRI_TOOLS_NEXT_VERSION"
    fi
    export CRITEST_NEXT="$next/critest"
}

install_deps() {
    local want=("$@") missing=() p
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # the node tests run their own etcd on a free port; Debian's etcd service
    # (port 2379, /var/lib/etcd) would only trip kubeadm's preflight there
    if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
        systemctl mask etcd.service
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() { # build DIR [cmake args...]
    local dir=$1
    shift
    cmake -S "$top" -B "$dir" -DCRICKET_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

# A CNI config so pods get a network out of the box (left alone if one exists).
install_cni_config() {
    local dir=/etc/cni/net.d
    mkdir -p "$dir"
    if ! ls "$dir"/*.conflist "$dir"/*.conf "$dir"/*.json >/dev/null 2>&1; then
        install -m 0644 contrib/cni/10-cricket.conflist "$dir/10-cricket.conflist"
        log "installed $dir/10-cricket.conflist"
    fi
}

# lint BUILD_DIR: the static checks; clang-tidy reads BUILD_DIR's
# compile_commands.json (configure and build it first). Only the project's
# own sources are checked, not tests, bench, fuzz or generated code.
lint() {
    local dir=$1
    log "clang-format"
    local files
    files=$(git ls-files '*.c' '*.h')
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $files
    log "banned functions"
    if git grep -nE '\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|system|gets)[[:space:]]*\(' \
        -- '*.c' '*.h'; then
        echo "banned function used (see STYLE.md)" >&2
        return 1
    fi
    log "cppcheck"
    cppcheck --quiet --enable=warning,portability --inline-suppr --error-exitcode=1 --std=c11 \
        -D_GNU_SOURCE --library=contrib/lint/cppcheck.cfg -I . common conf oci cni conmon server
    log "clang-tidy (.clang-tidy)"
    local out
    if ! out=$(run-clang-tidy -p "$dir" -quiet -j"$(nproc)" \
        "^$top/(common|conf|oci|cni|conmon|server)/" 2>&1); then
        printf '%s\n' "$out" | grep -vE '^(clang-tidy|[0-9]+ warnings? generated)' >&2
        echo "clang-tidy found problems" >&2
        return 1
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
deps)
    case "${1:-run}" in
    test) install_deps "${BUILD_DEPS[@]}" "${RUN_DEPS[@]}" "${TEST_DEPS[@]}" ;;
    *) install_deps "${BUILD_DEPS[@]}" "${RUN_DEPS[@]}" ;;
    esac
    ;;
run)
    install_deps "${BUILD_DEPS[@]}" "${RUN_DEPS[@]}"
    build build
    install_cni_config
    log "starting cricketd (config: /etc/cricket/cricket.yaml if present, else built-in defaults)"
    exec build/cricketd "$@"
    ;;
lint)
    install_deps "${BUILD_DEPS[@]}" clang-format clang-tidy cppcheck
    build build
    lint build
    ;;
test)
    install_deps "${BUILD_DEPS[@]}" "${RUN_DEPS[@]}" "${TEST_DEPS[@]}"
    install_cri_tools
    log "plain build"
    build build
    lint build
    log "every test on the plain build"
    (cd build && ctest --output-on-failure)
    log "Release build (-O3 finds what -O2 does not; -Werror on)"
    build build-release -DCMAKE_BUILD_TYPE=Release
    log "ASan/UBSan build + every test"
    build build-asan -DCRICKET_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
    log "valgrind on the unit tests"
    build build-valgrind -DCMAKE_BUILD_TYPE=Debug \
        "-DCRI_TEST_WRAPPER=valgrind;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite,indirect;--quiet"
    (cd build-valgrind && ctest -L unit --output-on-failure)
    log "all tests passed"
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
