#!/usr/bin/env bash
# Installs a cricket .deb on a clean Debian 12 and checks it works:
#
#   contrib/deb/check.sh DEB CRICTL
#
# The clean system is a minbase debootstrap of bookworm, made once and kept
# in /var/cache/cricket-test/bookworm (CRICKET_TEST_CACHE), used through a
# throw-away overlay mount so every run starts from the same state. Inside:
# apt-get installs the .deb with its dependencies from Debian, cricketd
# starts from the installed default config, `crictl version` must answer
# RuntimeName cricket and `crictl info` RuntimeReady, then the package is
# purged and its files must be gone. Every mount is undone on exit.
set -euo pipefail

deb=$(realpath "$1")
crictl=$(realpath "$2")
cache=${CRICKET_TEST_CACHE:-/var/cache/cricket-test}
base="$cache/bookworm"
mirror=${CRICKET_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '==> %s\n' "$*" >&2; }
fail() {
    printf 'deb check: %s\n' "$*" >&2
    exit 1
}

if [ ! -x "$base/usr/bin/apt-get" ]; then
    log "debootstrap bookworm (minbase) into $base (once per machine)"
    command -v debootstrap >/dev/null || fail "debootstrap is not installed"
    rm -rf "$base.tmp"
    debootstrap --variant=minbase bookworm "$base.tmp" "$mirror" >/dev/null
    mv "$base.tmp" "$base"
fi

work=$(mktemp -d /tmp/cricket-deb-check-XXXXXX)
root="$work/root"
pid=""
cleanup() {
    set +e
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid"
    fi
    for m in run dev/pts dev sys proc var/cache/apt/archives; do
        mountpoint -q "$root/$m" && umount -R "$root/$m"
    done
    mountpoint -q "$root" && umount "$root"
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/upper" "$work/work" "$root" "$cache/apt-archives/partial"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/cricket.deb"
install -m 0755 "$crictl" "$root/usr/local/bin/crictl"

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin "$@"; }

log "apt-get install ./$(basename "$deb") on a clean bookworm"
[ ! -e "$root/usr/bin/runc" ] || fail "the base system is not clean (runc present)"
in_root apt-get update -q >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    /tmp/cricket.deb >"$work/install.log" 2>&1 || {
    cat "$work/install.log" >&2
    fail "apt-get install failed"
}
for f in /usr/bin/cricketd /usr/libexec/cricket/cricket-conmon /usr/libexec/cricket/cricket-pause \
    /usr/libexec/cricket/cricket-rro /usr/libexec/cricket/cricket-pull \
    /etc/cricket/cricket.yaml /usr/lib/systemd/system/cricket.service \
    /usr/share/man/man8/cricketd.8.gz /usr/share/man/man5/cricket.yaml.5.gz \
    /usr/share/doc/cricket/crictl.yaml /usr/bin/runc; do
    [ -e "$root$f" ] || fail "$f missing after install"
done
grep -q '^KillMode=process' "$root/usr/lib/systemd/system/cricket.service" ||
    fail "unit without KillMode=process"
[ -L "$root/etc/systemd/system/multi-user.target.wants/cricket.service" ] ||
    fail "cricket.service not enabled by the postinst"

log "cricketd from the installed default config"
chroot "$root" /usr/bin/cricketd >"$work/cricketd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ -S "$root/run/cricket/cricket.sock" ] && break
    kill -0 "$pid" 2>/dev/null || {
        cat "$work/cricketd.log" >&2
        fail "cricketd exited"
    }
    sleep 0.1
done
ep=unix:///run/cricket/cricket.sock
version=$(in_root crictl --runtime-endpoint "$ep" --timeout 10s version) || {
    cat "$work/cricketd.log" >&2
    fail "crictl version failed"
}
echo "$version" >&2
grep -q '^RuntimeName: *cricket$' <<<"$version" || fail "unexpected crictl version output"
info=$(in_root crictl --runtime-endpoint "$ep" --timeout 10s info -o json)
python3 -c 'import json,sys; c={x["type"]:x["status"] for x in json.load(sys.stdin)["status"]["conditions"]}; sys.exit(0 if c.get("RuntimeReady") else 1)' \
    <<<"$info" || fail "RuntimeReady is not true: $info"
kill -TERM "$pid"
wait "$pid" || fail "cricketd exited non-zero on SIGTERM"
pid=""

log "apt-get purge cricket"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q cricket >/dev/null
for f in /usr/bin/cricketd /usr/libexec/cricket /etc/cricket/cricket.yaml \
    /usr/lib/systemd/system/cricket.service /usr/share/man/man8/cricketd.8.gz; do
    [ ! -e "$root$f" ] || fail "$f left after purge"
done
log "deb check passed: installs, starts, answers crictl version, purges"
