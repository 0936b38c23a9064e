"""Issue 10, item 1: nothing under root or runroot is reachable by other host
users. A container writes a setuid-root copy of a static program into its own
rootfs; `nobody` on the host must not be able to list or run anything there
(the Moby CVE-2021-41091 class). Also: an existing install with permissive
modes is tightened at startup."""
import os
import stat
import subprocess

import pytest

import api_pb2
from test_container import Pod, pod, reg  # noqa: F401 (fixtures)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)

SETPRIV = "/usr/bin/setpriv"

# Runs as nobody: tries to list every directory, read every file and run
# every setuid file it is given; prints what worked.
PROBE = r"""
import os, subprocess, sys
got = []
for line in sys.stdin.read().splitlines():
    kind, path = line.split(" ", 1)
    try:
        if kind == "d":
            os.listdir(path)
            got.append("listed " + path)
        elif kind == "x":
            r = subprocess.run(["id", "-u"], executable=path, capture_output=True, text=True,
                               timeout=10)
            got.append("ran %s: rc=%d euid=%s" % (path, r.returncode, r.stdout.strip()))
        else:
            with open(path, "rb") as f:
                f.read(1)
            got.append("read " + path)
    except (OSError, subprocess.SubprocessError):
        pass
print("\n".join(got))
"""


def open_path_to(path):
    """Makes every directory from / down to path traversable by others, so
    the check tests cricketd's own modes, not those of the test's temp dir."""
    p = os.path.dirname(path)
    while p not in ("/", ""):
        st = os.stat(p)
        if st.st_mode & 0o011 != 0o011:
            os.chmod(p, stat.S_IMODE(st.st_mode) | 0o011)
        p = os.path.dirname(p)


def tree(*roots):
    """Every path under roots (not following links or crossing into /proc)."""
    out = []
    for r in roots:
        for dirpath, dirnames, filenames in os.walk(r):
            out.append(("d", dirpath))
            for f in filenames:
                full = os.path.join(dirpath, f)
                if os.path.islink(full):
                    continue
                st = os.lstat(full)
                if stat.S_ISREG(st.st_mode):
                    out.append(("x" if st.st_mode & stat.S_ISUID else "f", full))
    return out


def as_nobody(entries):
    lines = "\n".join("%s %s" % e for e in entries)
    r = subprocess.run([SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "/usr/bin/python3", "-c", PROBE], input=lines, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if l]


@pytest.mark.skipif(not os.path.exists(SETPRIV), reason="setpriv (util-linux) missing")
def test_nobody_reaches_nothing_under_root_or_runroot(pod):
    root, runroot = pod.env.daemon.root, pod.env.daemon.runroot
    open_path_to(os.path.join(root, "x"))
    open_path_to(os.path.join(runroot, "x"))
    cid = pod.run("c", command=["sleep", "600"])
    # the container plants a setuid-root static program in its own rootfs
    r = pod.cri.call("ExecSync", timeout=30, container_id=cid,
                     cmd=["sh", "-c", "cat /bin/busybox > /e && chmod 4755 /e && ls -l /e"])
    assert r.exit_code == 0, r.stderr
    planted = os.path.join(root, "containers", cid, "rootfs", "e")
    assert os.stat(planted).st_mode & stat.S_ISUID

    # root itself can run it and sees the setuid bit work (the probe is real)
    entries = tree(root, runroot)
    assert ("x", planted) in entries
    assert ("x", os.path.join(root, "containers", cid, "upper", "e")) in entries

    got = as_nobody(entries)
    assert got == [], "nobody reached:\n" + "\n".join(got)
    # and the modes are what the daemon promises
    for d in (root, runroot):
        assert stat.S_IMODE(os.stat(d).st_mode) & 0o066 == 0, oct(os.stat(d).st_mode)
    for sub in ("containers", "layers", "blobs", "meta"):
        assert stat.S_IMODE(os.stat(os.path.join(root, sub)).st_mode) == 0o700, sub
    for sub in ("containers", "exits", "netns"):
        assert stat.S_IMODE(os.stat(os.path.join(runroot, sub)).st_mode) == 0o700, sub


@pytest.mark.skipif(not os.path.exists(SETPRIV), reason="setpriv (util-linux) missing")
def test_probe_can_see_an_open_tree(tmp_path):
    """The probe is able to fail: on a tree left open it reports what it got."""
    d = tmp_path / "open"
    d.mkdir()
    (d / "f").write_text("x")
    open_path_to(str(d / "f"))
    os.chmod(str(d), 0o755)
    os.chmod(str(d / "f"), 0o644)
    got = as_nobody([("d", str(d)), ("f", str(d / "f"))])
    assert got == ["listed " + str(d), "read " + str(d / "f")]


def test_existing_install_is_tightened_at_startup(pod):
    root, runroot = pod.env.daemon.root, pod.env.daemon.runroot
    pod.env.cri.close()
    assert pod.env.daemon.stop() == 0
    loose = [root, runroot] + [os.path.join(root, s) for s in ("containers", "layers", "blobs")] \
        + [os.path.join(runroot, s) for s in ("containers", "exits")]
    for p in loose:
        os.chmod(p, 0o755)
    pod.env.daemon.proc = None
    pod.env.start()
    pod.cri = pod.env.cri
    for p in (root, runroot):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o711, p
    for p in loose[2:]:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700, p
    assert "tightened the mode of" in pod.env.daemon.logs()
    # and the daemon works as before
    assert pod.cri.call("PodSandboxStatus", pod_sandbox_id=pod.id).status.state == \
        api_pb2.SANDBOX_READY
