"""The cricket-pull helper (issue 15): pulls run in a child process of
cricketd that holds libcurl and libarchive, so the daemon links neither; it
runs confined (seccomp, no_new_privs, few capabilities); a helper that dies
fails its pulls with a clear error and leaves the store clean for the next
pull; a daemon that dies takes its helper with it; a missing helper binary
stops the daemon at start."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import grpc
import pytest

from conftest import CRICKETD, Cri, api_pb2, image_spec, listed, pull
from registry import (Proxy, busybox_layer, push_image, registry_config, store_leftovers,
                      tar_bytes, temp_registry)

BUILD = os.path.dirname(CRICKETD)


def needed(path):
    """DT_NEEDED entries of an ELF file."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return [l.split("[", 1)[1].rstrip("]") for l in out.splitlines() if "(NEEDED)" in l]


def closure(path):
    """Every shared library the loader maps for path (ldd)."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    return [l.split()[0] for l in out.splitlines() if l.strip()]


def test_daemon_links_no_registry_client_or_unpacker():
    libs = closure(CRICKETD)
    for lib in ("libcurl", "libarchive", "libcrypto", "libssl", "libxml2"):
        assert not [l for l in libs if l.startswith(lib + ".")], (lib, libs)
    helper = os.path.join(BUILD, "cricket-pull")
    assert {"libcurl.so.4", "libarchive.so.13"} <= set(needed(helper)), needed(helper)
    # and the helper does not carry the daemon's gRPC stack
    assert not [l for l in needed(helper) if "grpc" in l], needed(helper)


@pytest.fixture(scope="module")
def reg():
    with temp_registry("cricket-phreg-") as r:
        r.busybox = push_image(r, "library/busybox", "latest", [busybox_layer()])
        big = [tar_bytes([("data%d" % i, "file", os.urandom(2 << 20), {})]) for i in range(2)]
        r.big = push_image(r, "library/big", "v1", [busybox_layer()] + big)
        yield r


@pytest.fixture
def proxy(reg):
    p = Proxy(reg.port)
    yield p
    p.stop()


def helpers_of(pid):
    """PIDs of the cricket-pull children of pid."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == pid and comm.startswith("cricket-pull"):
            out.append(int(p))
    return out


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    return not alive(pid)


def stalled_pull(d, proxy, reg, seconds):
    """Starts a pull of big:v1 whose second layer stalls; returns the future
    and the helper's pid once the stall is reached."""
    proxy.stall[reg.big.layer_digests[1]] = seconds
    cri = Cri(d.socket)
    fut = cri.future("PullImage", timeout=120, image=image_spec("big:v1"))
    assert proxy.stalled.wait(30)
    helpers = helpers_of(d.proc.pid)
    assert len(helpers) == 1, helpers
    return cri, fut, helpers[0]


def test_helper_runs_confined_and_exits_when_idle(daemon_factory, proxy, reg):
    d = daemon_factory(config_text=registry_config(proxy.host))
    assert helpers_of(d.proc.pid) == []  # none before the first pull
    cri, fut, helper = stalled_pull(d, proxy, reg, 3)
    st = status_fields(helper)
    assert st["Seccomp"].strip() == "2", st["Seccomp"]  # a filter
    assert st["NoNewPrivs"].strip() == "1"
    eff = int(st["CapEff"], 16)
    assert eff & (1 << 0) and eff & (1 << 27)  # CAP_CHOWN, CAP_MKNOD kept
    for cap in (12, 19, 13, 10):  # NET_ADMIN, SYS_PTRACE, NET_RAW, NET_BIND_SERVICE
        assert not eff & (1 << cap), hex(eff)
    assert int(st["CapBnd"], 16) == eff
    assert fut.result().image_ref == reg.big.id
    # no pull left: the helper is gone
    assert wait_gone(helper)
    assert helpers_of(d.proc.pid) == []
    cri.close()
    assert d.stop() == 0


def test_helper_killed_mid_pull(daemon_factory, proxy, reg):
    d = daemon_factory(config_text=registry_config(proxy.host))
    cri, fut, helper = stalled_pull(d, proxy, reg, 20)
    os.kill(helper, signal.SIGKILL)
    with pytest.raises(grpc.RpcError) as e:
        fut.result()
    msg = e.value.details()
    assert "pull helper" in msg and "killed by signal 9" in msg and "big:v1" in msg, msg
    assert listed(cri) == []
    # the next pull works and the store then holds that image only: what the
    # killed helper left in ingest/ and layers/tmp/ is gone
    proxy.stall.clear()
    assert pull(cri, "busybox") == reg.busybox.id
    assert [i.id for i in listed(cri)] == [reg.busybox.id]
    cri.call("RemoveImage", image=image_spec("busybox"))
    assert store_leftovers(d.root) == []
    cri.close()
    assert d.stop() == 0


def test_daemon_death_ends_its_helper(daemon_factory, proxy, reg):
    d = daemon_factory(config_text=registry_config(proxy.host))
    cri, fut, helper = stalled_pull(d, proxy, reg, 20)
    d.stop(signal.SIGKILL)
    assert wait_gone(helper), "the helper outlived its daemon"
    cri.close()
    proxy.stall.clear()
    # a new daemon on the same root sweeps what the helper left
    d2 = daemon_factory(config_text=registry_config(proxy.host), sub="again")
    c2 = Cri(d2.socket)
    assert listed(c2) == []
    c2.close()
    assert d2.stop() == 0
    d.start()
    c = Cri(d.socket)
    assert listed(c) == [] and store_leftovers(d.root) == []
    c.close()
    assert d.stop() == 0


def test_missing_helper_stops_the_daemon_at_start(daemon_factory):
    libexec = os.path.join("/usr/local/libexec/cricket", "cricket-pull")
    if os.path.exists(libexec):
        pytest.skip("an installed %s would be found" % libexec)
    bindir = tempfile.mkdtemp(prefix="cricket-nohelper-")
    try:
        for name in ("cricketd", "cricket-conmon", "cricket-pause"):
            shutil.copy(os.path.join(BUILD, name), bindir)
        d = daemon_factory(start=False)
        d.binary = os.path.join(bindir, "cricketd")
        d.start(wait=False)
        assert d.proc.wait(timeout=30) == 1
        logs = d.logs()
        assert "pull helper" in logs and "cricket-pull" in logs, logs[-2000:]
    finally:
        shutil.rmtree(bindir, ignore_errors=True)


def test_helper_gone_after_start_fails_the_pull_clearly(daemon_factory, reg):
    bindir = tempfile.mkdtemp(prefix="cricket-helpergone-")
    try:
        for name in ("cricketd", "cricket-conmon", "cricket-pause", "cricket-pull"):
            shutil.copy(os.path.join(BUILD, name), bindir)
        d = daemon_factory(config_text=registry_config(reg.host), start=False)
        d.binary = os.path.join(bindir, "cricketd")
        d.start()
        cri = Cri(d.socket)
        os.rename(os.path.join(bindir, "cricket-pull"), os.path.join(bindir, "moved"))
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, "busybox")
        # not NOT_FOUND: the image is not what is missing
        assert e.value.code() == grpc.StatusCode.UNKNOWN, e.value.code()
        msg = e.value.details()
        assert "start pull helper" in msg and "cricket-pull" in msg and "busybox" in msg, msg
        assert listed(cri) == [] and store_leftovers(d.root) == []
        os.rename(os.path.join(bindir, "moved"), os.path.join(bindir, "cricket-pull"))
        assert pull(cri, "busybox") == reg.busybox.id
        cri.close()
        assert d.stop() == 0
    finally:
        shutil.rmtree(bindir, ignore_errors=True)


def test_daemon_stop_ends_a_lingering_helper(daemon_factory, reg):
    """Right after a pull the helper lingers (for the next pull); a daemon
    that stops then ends it, cleanly."""
    d = daemon_factory(config_text=registry_config(reg.host))
    cri = Cri(d.socket)
    assert pull(cri, "busybox") == reg.busybox.id
    helpers = helpers_of(d.proc.pid)
    assert len(helpers) == 1, helpers
    cri.close()
    assert d.stop() == 0
    assert not alive(helpers[0])
    assert "pull helper" not in d.logs(), d.logs()  # it exited 0: nothing to warn about
