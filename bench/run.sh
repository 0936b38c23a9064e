#!/usr/bin/env bash
# Foundation benchmark: Version round trips per second (sequential and 16 in
# flight) and the daemon's RSS/PSS at idle, for the working tree and for a
# baseline revision, side by side in one run.
#
#   bench/run.sh [BASE_REV] [SECONDS]      (default BASE_REV=HEAD, SECONDS=3)
#
# Set CONTAINERD=1 to add Debian's containerd (CRI plugin) as a third column.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
base_rev=${1:-HEAD}
secs=${2:-3}
work=$(mktemp -d /tmp/cricket-bench-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    git -C "$top" worktree remove --force "$work/base-src" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

build() { # build SRC DIR
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$2" -j"$(nproc)" --target cricketd cri_bench >/dev/null
}

echo "building working tree and $base_rev ..." >&2
build "$top" "$work/cur"
git -C "$top" worktree add --detach "$work/base-src" "$base_rev" >/dev/null 2>&1
build "$work/base-src" "$work/base"
bench_client=$work/cur/cri_bench

kb() { awk -v k="$2" '$1 == k":" {print $2}' "$1"; }

measure() { # measure NAME SOCKET PID
    local name=$1 sock=$2 pid=$3 seq par rss pss
    sleep 1
    local rss0 pss0
    rss0=$(kb /proc/"$pid"/status VmRSS)
    pss0=$(kb /proc/"$pid"/smaps_rollup Pss)
    seq=$("$bench_client" "$sock" "$secs" 1)
    par=$("$bench_client" "$sock" "$secs" 16)
    rss=$(kb /proc/"$pid"/status VmRSS)
    pss=$(kb /proc/"$pid"/smaps_rollup Pss)
    printf '%s|%s|%s|%s|%s|%s|%s\n' "$name" \
        "$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$seq")" "$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$seq")" \
        "$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$par")" "$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$par")" \
        "$rss0/$pss0" "$rss/$pss"
}

start_cricketd() { # start_cricketd NAME BIN
    local d=$work/$1-run
    mkdir -p "$d/net.d"
    "$2" --listen "unix://$d/s.sock" --root "$d/root" --runroot "$d/run" --log-level warn \
        --config-dir "$d/none" >"$d/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$d/s.sock" ] && break; sleep 0.05; done
    measure "$1" "$d/s.sock" "${pids[-1]}"
    kill "${pids[-1]}" && wait "${pids[-1]}" || true # one daemon at a time on the CPUs
}

start_containerd() {
    local d=$work/containerd-run
    mkdir -p "$d"
    command -v containerd >/dev/null || { echo "containerd not installed, skipped" >&2; return; }
    cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/s.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = true
TOML
    containerd --config "$d/config.toml" >"$d/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$d/s.sock" ] && break; sleep 0.05; done
    measure "containerd-$(containerd --version | awk '{print $3}')" "$d/s.sock" "${pids[-1]}"
    kill "${pids[-1]}" && wait "${pids[-1]}" || true
}

# rows go to a file: a $(...) subshell would keep the daemons' pids from cleanup
start_cricketd "base($base_rev)" "$work/base/cricketd" >>"$work/rows"
start_cricketd "current" "$work/cur/cricketd" >>"$work/rows"
if [ "${CONTAINERD:-0}" = 1 ]; then start_containerd >>"$work/rows"; fi

printf '\nVersion over the CRI socket, %ss per run (RSS/PSS in KiB)\n' "$secs"
{
    echo "daemon|seq rps|seq p50 us|16-inflight rps|16-inflight p99 us|idle RSS/PSS|after RSS/PSS"
    cat "$work/rows"
} | column -t -s'|'
