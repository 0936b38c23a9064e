#!/usr/bin/python3
"""Writes the seed corpus of fuzz_layer_unpack into corpus/layer_unpack/.

Each seed is a small layer blob built by hand with tarfile: ordinary layers
(files, dirs, links, whiteouts, devices; plain, gzip, zstd when the zstd tool
is there) and hostile ones that try to write outside the layer directory
(`..`, absolute names, writes through symlinks, hard links out, whiteouts
through links). fuzz_layer_unpack.c checks containment against the sibling
directory `outside/` and the canary /tmp/cricket-fuzz-escape."""
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "layer_unpack")
CANARY = "/tmp/cricket-fuzz-escape"


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.mtime = 1700000000
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def tar(entries, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.size else None)
    return buf.getvalue()


def seeds():
    ordinary = [
        entry("bin/", tarfile.DIRTYPE, mode=0o755),
        entry("bin/sh", data=b"#!/bin/true\n", mode=0o4755),
        entry("bin/ash", tarfile.LNKTYPE, link="bin/sh"),
        entry("bin/link", tarfile.SYMTYPE, link="sh"),
        entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", uid=0, gid=0),
        entry("etc/.wh.shadow"),
        entry("var/.wh..wh..opq"),
        entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        entry("run/fifo", tarfile.FIFOTYPE),
    ]
    plain = tar(ordinary)
    yield "ordinary.tar", plain
    yield "ordinary.tar.gz", gzip.compress(plain, mtime=0)
    if shutil.which("zstd"):
        yield "ordinary.tar.zst", subprocess.run(["zstd", "-q", "-c"], input=plain,
                                                 stdout=subprocess.PIPE, check=True).stdout
    yield "pax_long_name.tar", tar([entry("d/" + "n" * 200, data=b"x",
                                          pax_headers={"SCHILY.xattr.user.k": "v"})],
                                   tarfile.PAX_FORMAT)
    # overlay metadata a layer may not set (dropped), kept user.* and capability
    yield "xattrs_trusted.tar", tar([
        entry("d/", tarfile.DIRTYPE, mode=0o755,
              pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"}),
        entry("d/f", data=b"x", pax_headers={
            "SCHILY.xattr.trusted.overlay.redirect": "/etc",
            "SCHILY.xattr.trusted.overlay.metacopy": "",
            "SCHILY.xattr.trusted.foo": "bar",
            "SCHILY.xattr.user.keep": "1",
            "SCHILY.xattr.security.capability":
                "\x01\x00\x00\x02\x00\x04" + "\x00" * 14})], tarfile.PAX_FORMAT)
    yield "gnu_long_link.tar", tar([entry("l", tarfile.SYMTYPE, link="x" * 300)],
                                   tarfile.GNU_FORMAT)
    # hostile: climb out, absolute names
    yield "dotdot.tar", tar([entry("../outside/evil", data=b"1"),
                             entry("a/../../outside/evil2", data=b"2")])
    yield "absolute.tar", tar([entry(CANARY, data=b"1"), entry("/" + "../" * 8 + CANARY[1:])])
    # writes through symlinks
    yield "symlink_dir.tar", tar([entry("l", tarfile.SYMTYPE, link="../outside"),
                                  entry("l/evil", data=b"1")])
    yield "symlink_root.tar", tar([entry("root", tarfile.SYMTYPE, link="/"),
                                   entry("root" + CANARY, data=b"1")])
    yield "symlink_chain.tar", tar([entry("a", tarfile.SYMTYPE, link="b"),
                                    entry("b", tarfile.SYMTYPE, link="../outside"),
                                    entry("a/evil", tarfile.DIRTYPE)])
    yield "symlink_then_dir.tar", tar([entry("d", tarfile.SYMTYPE, link="../outside"),
                                       entry("d/", tarfile.DIRTYPE),
                                       entry("d/x", data=b"1")])
    yield "symlink_file_target.tar", tar([entry("f", tarfile.SYMTYPE, link="../outside/f"),
                                          entry("f", data=b"replaces the link, not its target")])
    # hard links out, and a hard link then written through
    yield "hardlink_out.tar", tar([entry("h", tarfile.LNKTYPE, link="../blob"),
                                   entry("h2", tarfile.LNKTYPE, link=CANARY)])
    yield "hardlink_via_symlink.tar", tar([entry("l", tarfile.SYMTYPE, link=".."),
                                           entry("h", tarfile.LNKTYPE, link="l/blob"),
                                           entry("h", data=b"overwrite")])
    # whiteouts through links, odd whiteouts
    yield "whiteout_symlink.tar", tar([entry("l", tarfile.SYMTYPE, link="../outside"),
                                       entry("l/.wh.x"), entry("l/.wh..wh..opq")])
    yield "whiteout_odd.tar", tar([entry(".wh."), entry(".wh.."), entry(".wh..wh.plnk"),
                                   entry("x/.wh...")])
    # broken archives
    yield "truncated.tar", plain[:700]
    yield "truncated.tar.gz", gzip.compress(plain, mtime=0)[:100]
    yield "garbage", b"\x1f\x8b\x08\x00garbage" + bytes(range(256))
    yield "empty", b""


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
