"""oci/ against real runc: specs made by cricket's generator (through the
test-only `oci-spec-tool`), containers from a busybox-static rootfs built
here, run by the real runtime, checked from inside and from the host.

Every container lives under a private `runc --root` in a temp dir and a
private cgroup parent; both are removed (runc delete --force, rmdir) even
when a test fails. Only processes these tests start are ever signalled."""
import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"


def tool_path():
    if os.environ.get("OCI_SPEC_TOOL"):
        return os.environ["OCI_SPEC_TOOL"]
    cricketd = os.environ.get("CRICKETD", "")
    return os.path.join(os.path.dirname(cricketd), "oci-spec-tool") if cricketd else ""


TOOL = tool_path()

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.access(RUNC, os.X_OK), reason="runc not installed"),
    pytest.mark.skipif(not os.access(BUSYBOX, os.X_OK), reason="busybox-static not installed"),
    pytest.mark.skipif(not os.access(TOOL or "/nonexistent", os.X_OK),
                       reason="oci-spec-tool not built (set OCI_SPEC_TOOL or CRICKETD)"),
]

DEFAULT_CAPS = 0x00000000A80425FB  # containerd/Docker default set
CAP_NET_ADMIN = 12
PATH_ENV = "PATH=/bin"


def make_rootfs(path):
    bindir = os.path.join(path, "bin")
    os.makedirs(bindir)
    shutil.copy2(BUSYBOX, os.path.join(bindir, "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(bindir, a))
    for d in ("proc", "sys", "dev", "etc", "tmp", "work"):
        os.makedirs(os.path.join(path, d), exist_ok=True)


@pytest.fixture(scope="module")
def rootfs():
    base = tempfile.mkdtemp(prefix="cricket-oci-rootfs-")
    try:
        make_rootfs(os.path.join(base, "rootfs"))
        yield os.path.join(base, "rootfs")
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Env:
    """A private runc root, bundles and cgroup parent for one test."""

    def __init__(self, base, rootfs):
        self.base = base
        self.rootfs = rootfs
        self.root = os.path.join(base, "runc")
        self.cgroup_parent = "/cricket-e2e-" + uuid.uuid4().hex[:8]
        self.ids = []

    def new_id(self):
        cid = "oci-" + uuid.uuid4().hex[:12]
        self.ids.append(cid)
        return cid

    def desc(self, cid, args, **extra):
        d = {"id": cid, "root_path": self.rootfs, "cgroup_parent": self.cgroup_parent,
             "process": {"args": args, "env": [PATH_ENV]}}
        d.update(extra)
        return d

    def write_spec(self, desc, rro=False):
        bundle = os.path.join(self.base, "bundles", desc["id"])
        os.makedirs(bundle, exist_ok=True)
        argv = [TOOL] + (["--rro"] if rro else []) + [bundle]
        r = subprocess.run(argv, input=json.dumps(desc), capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        return bundle

    def spec_error(self, desc):
        r = subprocess.run([TOOL, "--print"], input=json.dumps(desc), capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stderr

    def run(self, desc, timeout=30, rro=False):
        """`runc run` in the foreground; returns (exit code, stdout, stderr)."""
        bundle = self.write_spec(desc, rro=rro)
        r = subprocess.run([RUNC, "--root", self.root, "run", "--bundle", bundle, desc["id"]],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr

    def sh(self, script, **extra):
        cid = self.new_id()
        return self.run(self.desc(cid, ["/bin/sh", "-c", script], **extra))

    def tool(self, *args, stdin=None, timeout=60):
        """One verb through cricket's ops table; returns the CompletedProcess."""
        return subprocess.run([TOOL, "runtime", "--root", self.root] + list(args),
                              input=stdin, capture_output=True, text=True, timeout=timeout)

    def state(self, cid):
        r = self.tool("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def wait_status(self, cid, want, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state(cid)
            if st["status"] == want:
                return st
            time.sleep(0.05)
        raise AssertionError("%s never became %s: %s" % (cid, want, st))

    def cleanup(self):
        for cid in self.ids:
            subprocess.run([RUNC, "--root", self.root, "delete", "--force", cid],
                           capture_output=True, timeout=30)
        cg = "/sys/fs/cgroup"
        if os.path.isdir(cg):
            for ctl in os.listdir(cg):
                p = os.path.join(cg, ctl, self.cgroup_parent.lstrip("/"))
                if os.path.isdir(p):
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass
            p = os.path.join(cg, self.cgroup_parent.lstrip("/"))
            if os.path.isdir(p):
                try:
                    os.rmdir(p)
                except OSError:
                    pass


@pytest.fixture
def env(rootfs):
    base = tempfile.mkdtemp(prefix="cricket-oci-")
    e = Env(base, rootfs)
    try:
        yield e
    finally:
        e.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def status_field(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in:\n%s" % (key, text))


def host_bounding():
    with open("/proc/self/status") as f:
        return int(status_field(f.read(), "CapBnd"), 16)


# ---------------------------------------------------------------- security


def test_default_capabilities_and_seccomp(env):
    cid = env.new_id()
    rc, out, err = env.run(env.desc(cid, ["/bin/cat", "/proc/self/status"]))
    assert rc == 0, err
    bnd = int(status_field(out, "CapBnd"), 16)
    assert bnd == DEFAULT_CAPS
    assert not bnd & (1 << CAP_NET_ADMIN)
    assert int(status_field(out, "CapEff"), 16) == DEFAULT_CAPS
    assert int(status_field(out, "CapInh"), 16) == 0
    assert status_field(out, "Seccomp") == "2"


def test_seccomp_default_blocks_unshare_unconfined_allows(env):
    # creating a user namespace needs no capability, so only seccomp stops it
    rc, out, err = env.sh("unshare -U true; echo rc=$?")
    assert rc == 0, err
    assert "rc=1" in out
    assert "Operation not permitted" in err
    rc, out, err = env.sh("unshare -U true; echo rc=$?", seccomp="unconfined")
    assert rc == 0, err
    assert "rc=0" in out, err
    rc, out, _ = env.sh("grep Seccomp: /proc/self/status", seccomp="unconfined")
    assert status_field(out, "Seccomp") == "0"


def test_seccomp_localhost_profile(env):
    profile = os.path.join(env.base, "deny-mkdir.json")
    with open(profile, "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                 "errnoRet": errno.EPERM}]}, f)
    rc, out, err = env.sh("mkdir /tmp/x-$$; echo rc=$?", seccomp="localhost",
                          seccomp_profile_path=profile)
    assert rc == 0, err
    assert "rc=1" in out and "Operation not permitted" in err
    # a profile that does not exist fails at spec time, naming it
    code, msg = env.spec_error(env.desc("x", ["/bin/true"], seccomp="localhost",
                                        seccomp_profile_path="/nonexistent/p.json"))
    assert code == 1 and "/nonexistent/p.json" in msg and "ENOENT" in msg


@pytest.mark.parametrize("add,drop,want_set,want_clear", [
    ([], ["ALL"], [], "all"),
    (["NET_ADMIN"], [], [CAP_NET_ADMIN], []),
    (["net_admin"], ["ALL"], [CAP_NET_ADMIN], [0]),
    ([], ["CHOWN", "CAP_KILL"], [], [0, 5]),
])
def test_capability_add_drop(env, add, drop, want_set, want_clear):
    cid = env.new_id()
    rc, out, err = env.run(env.desc(cid, ["/bin/cat", "/proc/self/status"], cap_add=add,
                                    cap_drop=drop))
    assert rc == 0, err
    bnd = int(status_field(out, "CapBnd"), 16)
    if want_clear == "all" and not want_set:
        assert bnd == 0
        return
    for c in want_set:
        assert bnd & (1 << c)
    for c in want_clear:
        assert not bnd & (1 << c)


def test_unknown_capability_rejected(env):
    code, msg = env.spec_error(env.desc("x", ["/bin/true"], cap_add=["NET_ADMIN", "BOGUS"]))
    assert code == 1
    assert "unknown capability `BOGUS`" in msg and "EINVAL" in msg


def test_masked_and_readonly_paths_default(env):
    with open("/proc/timer_list", "rb") as f:
        assert len(f.read(64)) > 0  # the host's is not empty
    cid = env.new_id()
    rc, out, err = env.run(env.desc(cid, ["/bin/wc", "-c", "/proc/timer_list"]))
    assert rc == 0, err
    assert out.split()[0] == "0"
    rc, out, err = env.sh("ls -A /sys/firmware | wc -l; echo x > /proc/sys/kernel/hostname;"
                          " echo rc=$?; echo 1 > /proc/sysrq-trigger; echo rc=$?")
    assert out.split()[0] == "0"
    assert out.count("rc=1") == 2
    assert "Read-only file system" in err


def test_masked_and_readonly_paths_given_lists_are_exact(env):
    rc, out, err = env.sh("wc -c < /proc/timer_list; cat /proc/keys; echo rc=$?; "
                          "touch /work/t; echo rc=$?",
                          masked_paths=["/proc/keys"], readonly_paths=["/work"])
    assert rc == 0, err
    lines = out.split()
    assert int(lines[0]) > 0  # not masked: not in the caller's list
    assert "rc=0" in lines[1:] and "rc=1" in lines[1:]
    assert "Read-only file system" in err


def test_privileged(env):
    cid = env.new_id()
    rc, out, err = env.run(env.desc(cid, ["/bin/sh", "-c",
                                          "cat /proc/self/status; grep ' /sys ' /proc/mounts;"
                                          " ls /dev | wc -l; wc -c < /proc/timer_list"],
                                    privileged=True, cap_drop=["ALL"]))
    assert rc == 0, err
    assert int(status_field(out, "CapBnd"), 16) == host_bounding()
    assert status_field(out, "Seccomp") == "0"
    lines = out.splitlines()
    sys_line = [ln for ln in lines if " /sys " in ln][0]
    assert " rw," in sys_line
    assert int(lines[-2]) >= len([d for d in os.listdir("/dev")
                                  if d not in ("pts", "shm", "mqueue", "fd")]) // 2
    assert int(lines[-1]) > 0  # nothing masked


# ---------------------------------------------------------------- process


def test_hostname_env_cwd_user_groups(env):
    cid = env.new_id()
    desc = env.desc(cid, ["/bin/sh", "-c", "hostname; echo $GREETING; pwd; id"],
                    hostname="pod-host-1")
    desc["process"].update({"env": [PATH_ENV, "GREETING=hello world"], "cwd": "/work",
                            "uid": 1000, "gid": 1000, "additional_gids": [1234, 50000]})
    rc, out, err = env.run(desc)
    assert rc == 0, err
    assert out.splitlines() == ["pod-host-1", "hello world", "/work",
                                "uid=1000 gid=1000 groups=1234,50000"]


def test_readonly_rootfs(env):
    rc, out, err = env.sh("touch /tmp/x; echo rc=$?", root_readonly=True)
    assert "rc=1" in out and "Read-only file system" in err


def test_oom_score_adj_clamped(env):
    with open("/proc/self/oom_score_adj") as f:
        floor = int(f.read())
    cid = env.new_id()
    desc = env.desc(cid, ["/bin/cat", "/proc/self/oom_score_adj"])
    desc["process"]["oom_score_adj"] = -999
    rc, out, err = env.run(desc)
    assert rc == 0, err
    assert int(out) in (-999, floor)  # -999 only where CAP_SYS_RESOURCE is held
    desc = env.desc(env.new_id(), ["/bin/cat", "/proc/self/oom_score_adj"])
    desc["process"]["oom_score_adj"] = 900
    rc, out, err = env.run(desc)
    assert rc == 0, err
    assert int(out) == 900


# ---------------------------------------------------------------- mounts


def test_bind_mounts_ro_rw(env):
    src = os.path.join(env.base, "vol")
    os.makedirs(src)
    with open(os.path.join(src, "hello"), "w") as f:
        f.write("from host\n")
    rc, out, err = env.sh(
        "cat /ro/hello; touch /ro/x; echo rc=$?; echo written > /rw/new; echo rc=$?",
        mounts=[{"destination": "/ro", "source": src, "readonly": True},
                {"destination": "/rw", "source": src,
                 "propagation": "host_to_container"}])
    assert rc == 0, err
    assert out.splitlines() == ["from host", "rc=1", "rc=0"]
    with open(os.path.join(src, "new")) as f:
        assert f.read() == "written\n"


def test_recursive_readonly(env):
    r = env.tool("features", "x")
    if r.returncode != 0 or "rro=1" not in r.stdout:
        pytest.skip("runtime or kernel without recursive read-only mounts")
    src = os.path.join(env.base, "tree")
    sub = os.path.join(src, "sub")
    os.makedirs(sub)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", sub], check=True)
    try:
        mounts = [{"destination": "/data", "source": src, "readonly": True}]
        rc, out, err = env.sh("touch /data/sub/a; echo rc=$?", mounts=mounts)
        assert "rc=0" in out, err  # plain ro: the submount stays writable
        mounts[0]["recursive_readonly"] = True
        cid = env.new_id()
        rc, out, err = env.run(env.desc(cid, ["/bin/sh", "-c", "touch /data/sub/b; echo rc=$?"],
                                        mounts=mounts), rro=True)
        assert "rc=1" in out and "Read-only file system" in err
    finally:
        subprocess.run(["umount", "-l", sub], check=False)


# ---------------------------------------------------------------- runtime ops


def cgroup_file(pid, v1_controller, v1_name, v2_name):
    with open("/proc/%d/cgroup" % pid) as f:
        lines = f.read().splitlines()
    for ln in lines:
        _, ctls, path = ln.split(":", 2)
        if v1_controller in ctls.split(","):
            return os.path.join("/sys/fs/cgroup", v1_controller, path.lstrip("/"), v1_name)
    for ln in lines:
        if ln.startswith("0::"):
            return os.path.join("/sys/fs/cgroup", ln[3:].lstrip("/"), v2_name)
    raise AssertionError("no cgroup for %d" % pid)


def read_int(path):
    with open(path) as f:
        v = f.read().strip()
    return -1 if v == "max" else int(v)


def test_lifecycle_state_update_pause_kill_delete(env):
    cid = env.new_id()
    desc = env.desc(cid, ["/bin/sleep", "300"], resources={"memory_limit": 64 << 20})
    bundle = env.write_spec(desc)
    r = env.tool("create", cid, bundle)
    assert r.returncode == 0, r.stderr
    st = env.state(cid)
    assert st["status"] == "created" and st["pid"] > 0 and st["bundle"] == bundle
    mem = cgroup_file(st["pid"], "memory", "memory.limit_in_bytes", "memory.max")
    assert read_int(mem) == 64 << 20

    r = env.tool("start", cid)
    assert r.returncode == 0, r.stderr
    assert env.state(cid)["status"] == "running"

    r = env.tool("update", cid, stdin=json.dumps({"memory_limit": 128 << 20}))
    assert r.returncode == 0, r.stderr
    assert read_int(mem) == 128 << 20

    assert env.tool("pause", cid).returncode == 0
    assert env.state(cid)["status"] == "paused"
    assert env.tool("resume", cid).returncode == 0
    assert env.state(cid)["status"] == "running"

    r = env.tool("delete", cid)
    assert r.returncode == 1 and "not stopped" in r.stderr

    assert env.tool("kill", cid, str(int(signal.SIGKILL))).returncode == 0
    env.wait_status(cid, "stopped")
    assert env.tool("delete", cid).returncode == 0
    r = env.tool("state", cid)
    assert r.returncode == 1
    assert "runc state `%s`: container does not exist (ENOENT)" % cid in r.stderr


def test_runtime_errors_surface_runc_message(env):
    r = env.tool("start", "no-such-container")
    assert r.returncode == 1
    assert "runc start `no-such-container`: container does not exist (ENOENT)" in r.stderr

    # bad args: the binary does not exist in the rootfs
    cid = env.new_id()
    bundle = env.write_spec(env.desc(cid, ["/no/such/binary"]))
    r = env.tool("create", cid, bundle)
    assert r.returncode == 1
    assert ("runc create `%s`:" % cid) in r.stderr
    assert "/no/such/binary" in r.stderr and "no such file or directory" in r.stderr

    # a second create with a taken id
    cid2 = env.new_id()
    bundle = env.write_spec(env.desc(cid2, ["/bin/sleep", "300"]))
    assert env.tool("create", cid2, bundle).returncode == 0
    r = env.tool("create", cid2, bundle)
    assert r.returncode == 1 and "EEXIST" in r.stderr and "already exists" in r.stderr


def test_exec_status_user_and_timeout(env):
    cid = env.new_id()
    bundle = env.write_spec(env.desc(cid, ["/bin/sleep", "300"]))
    assert env.tool("create", cid, bundle).returncode == 0
    assert env.tool("start", cid).returncode == 0

    proc = {"args": ["/bin/sh", "-c", "id; grep CapBnd /proc/self/status; exit 3"],
            "env": [PATH_ENV], "uid": 5, "gid": 6}
    r = env.tool("exec", cid, stdin=json.dumps(proc))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "uid=5 gid=6"
    assert int(lines[1].split()[1], 16) == DEFAULT_CAPS  # the container's caps
    assert lines[2] == "exit=%d" % (3 << 8)

    marker = "31" + str(os.getpid() % 1000)
    proc = {"args": ["/bin/sleep", marker], "env": [PATH_ENV], "timeout_ms": 500}
    t0 = time.monotonic()
    r = env.tool("exec", cid, stdin=json.dumps(proc))
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1 and "ETIMEDOUT" in r.stderr
    # the exec'd process was killed, not left behind in the container
    time.sleep(0.2)
    ps = subprocess.run([RUNC, "--root", env.root, "ps", cid], capture_output=True, text=True)
    assert marker not in ps.stdout, ps.stdout
