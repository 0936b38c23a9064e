#!/usr/bin/env bash
# Builds a Debian 12 package of cricket from this tree:
#
#   contrib/deb/build.sh [OUT_DIR]      (default OUT_DIR: build-deb/)
#
# A Release build with prefix /usr and the distribution's default flags (no
# -Werror), installed with DESTDIR into a staging root, plus DEBIAN/ control
# files written here: dependencies from dpkg-shlibdeps, /etc/cricket as
# conffiles, maintainer scripts that register the systemd unit. Needs
# dpkg-dev; prints the path of the .deb on its last line.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$top/build-deb}" && cd "${1:-$top/build-deb}" && pwd)
version=$(sed -n 's/^project(cricket VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
arch=$(dpkg --print-architecture)
build="$out/build"
stage="$out/stage"

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
    -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" >/dev/null
cmake --build "$build" -j"$(nproc)" --target cricketd cricket-conmon cricket-pause cricket-pull cricket-rro cricket_man >&2
rm -rf "$stage"
DESTDIR="$stage" cmake --install "$build" >/dev/null
# the tests' own binaries are not part of the package
find "$stage" -name 'cricketd-test' -delete
strip --strip-unneeded "$stage/usr/bin/cricketd" "$stage/usr/libexec/cricket/cricket-conmon" \
    "$stage/usr/libexec/cricket/cricket-pull" "$stage/usr/libexec/cricket/cricket-rro"
gzip -9n "$stage/usr/share/man/man5/cricket.yaml.5" "$stage/usr/share/man/man8/cricketd.8"

# shared library dependencies, the way debhelper finds them
shlib=$(mktemp -d)
trap 'rm -rf "$shlib"' EXIT
mkdir -p "$shlib/debian"
printf 'Source: cricket\n\nPackage: cricket\nArchitecture: any\n' >"$shlib/debian/control"
deps=$(cd "$shlib" && dpkg-shlibdeps -O "$stage/usr/bin/cricketd" \
    "$stage/usr/libexec/cricket/cricket-conmon" "$stage/usr/libexec/cricket/cricket-pull" \
    "$stage/usr/libexec/cricket/cricket-rro" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: cricket
Version: $version-1
Architecture: $arch
Maintainer: cricket developers <cricket@localhost>
Installed-Size: $size
Depends: $deps, runc, containernetworking-plugins, iptables
Section: admin
Priority: optional
Description: Kubernetes CRI runtime in C
 cricketd serves the Kubernetes Container Runtime Interface (CRI v1) over
 gRPC on a unix socket for kubelet, crictl and kubeadm: pods are a pause
 sandbox plus containers, networking is done by CNI plugins, one small
 monitor per container writes kubelet-format logs, runc runs containers.
CONTROL
find "$stage/etc" -type f | sed "s|^$stage||" | sort >"$stage/DEBIAN/conffiles"
install -m 0755 "$top/contrib/deb/postinst" "$top/contrib/deb/prerm" \
    "$top/contrib/deb/postrm" "$stage/DEBIAN/"

deb="$out/cricket_${version}-1_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
