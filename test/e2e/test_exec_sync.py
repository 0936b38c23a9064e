"""ExecSync without a monitor (issue 15): the daemon runs `runc exec` in the
foreground from a worker with pipes. Its failure paths: the timeout kills
the process and leaves no runc, no process and no zombie behind; output over
the cap is dropped; a container stopped during an exec ends the exec and the
RPC answers; an exec that cannot start is an error naming the command; and
many execs leak no fd, no zombie and no per-call file."""
import os
import signal
import threading
import time

import grpc

from test_container import (Pod, exec_sync, expect_error, gone, pod,  # noqa: F401 (fixtures)
                            procs_with_cmdline, reg)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)


def runc_execs(env):
    """PIDs of `runc --root <ours> ... exec` still running."""
    found = []
    root = env.runc_root.encode()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 3 and argv[1] == b"--root" and argv[2] == root and b"exec" in argv:
            found.append(int(p))
    return found


def children(pid):
    """(pid, state) of pid's children."""
    out = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % p) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(rest[1]) == pid:
            out.append((int(p), rest[0]))
    return out


def pipes(pid):
    """How many pipe fds pid holds."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:")
        except OSError:
            pass
    return n


def settled(fn, want, timeout=10):
    """fn() once it equals want, or its last value after timeout (bounded
    wait for asynchronous reaping, not a timing assertion)."""
    end = time.time() + timeout
    v = fn()
    while v != want and time.time() < end:
        time.sleep(0.05)
        v = fn()
    return v


def runc_tmp_files(env):
    d = env.runc_root + ".tmp"
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_exec_sync_timeout_leaves_nothing(pod):
    cid = pod.run("t", command=["sleep", "1000"])
    dpid = pod.env.daemon.proc.pid
    d = expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, exec_sync, pod, cid,
                     ["sh", "-c", "sleep 31; echo never"], timeout=1)
    assert "timed out" in d
    assert gone(b"sh\0-c\0sleep 31; echo never\0", cid) and gone(b"sleep\x0031\0", cid)
    assert settled(lambda: runc_execs(pod.env), []) == []
    assert [c for c in children(dpid) if c[1] == "Z"] == []
    assert settled(lambda: runc_tmp_files(pod.env), []) == []
    # the container itself is untouched, and a later exec works
    assert exec_sync(pod, cid, ["echo", "-n", "ok"]).stdout == b"ok"
    pod.stop(cid, timeout=0)


def test_exec_sync_output_over_cap_and_streams(pod):
    cid = pod.run("o", command=["sleep", "1000"])
    # stdout and stderr stay apart; a lone stream over the 16 MiB budget is
    # cut, from its start; the exit code is the process's
    r = exec_sync(pod, cid, ["sh", "-c", "echo -n err >&2; busybox head -c 17000000 /dev/zero;"
                             " exit 7"], timeout=60)
    assert r.exit_code == 7 and r.stderr == b"err"
    assert 15 << 20 < len(r.stdout) < 16 << 20 and r.stdout == bytes(len(r.stdout))
    # killed by a signal: 128 + signal, as containerd reports it
    r = exec_sync(pod, cid, ["sh", "-c", "kill -9 $$"])
    assert r.exit_code == 137
    pod.stop(cid, timeout=0)


def test_exec_sync_cannot_start(pod):
    cid = pod.run("n", command=["sleep", "1000"])
    d = expect_error(grpc.StatusCode.UNKNOWN, exec_sync, pod, cid, ["/no/such/binary"])
    assert "/no/such/binary" in d and cid in d, d
    assert runc_execs(pod.env) == []
    assert settled(lambda: runc_tmp_files(pod.env), []) == []
    pod.stop(cid, timeout=0)


def test_exec_sync_container_stopped_during_exec(pod):
    cid = pod.run("s", command=["sleep", "1000"])
    out = {}

    def run():
        try:
            out["r"] = exec_sync(pod, cid, ["sleep", "300"], timeout=0)
        except grpc.RpcError as e:
            out["e"] = e

    t = threading.Thread(target=run)
    t.start()
    # the exec runs before the stop (bounded wait)
    assert settled(lambda: bool(runc_execs(pod.env)), True) is True
    pod.stop(cid, timeout=0)
    t.join(60)
    assert not t.is_alive(), "ExecSync did not answer once its container stopped"
    # the process died with its container: its exit status, or an error
    assert ("r" in out and out["r"].exit_code == 137) or "e" in out, out
    assert settled(lambda: runc_execs(pod.env), []) == []
    # a stopped container refuses new execs
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, exec_sync, pod, cid, ["true"])
    assert "not running" in d


def test_exec_sync_no_leaks(pod):
    cid = pod.run("l", command=["sleep", "1000"])
    dpid = pod.env.daemon.proc.pid
    exec_sync(pod, cid, ["true"])  # warm-up: the worker threads exist
    before = pipes(dpid)
    for i in range(30):
        r = exec_sync(pod, cid, ["sh", "-c", "echo %d; echo e >&2; exit %d" % (i, i % 3)])
        assert r.stdout == b"%d\n" % i and r.stderr == b"e\n" and r.exit_code == i % 3
    expect_error(grpc.StatusCode.UNKNOWN, exec_sync, pod, cid, ["/no/such/binary"])
    expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, exec_sync, pod, cid, ["sleep", "9"],
                 timeout=1)
    assert settled(lambda: pipes(dpid), before) == before
    assert [c for c in children(dpid) if c[1] == "Z"] == []
    assert settled(lambda: runc_execs(pod.env), []) == []
    assert settled(lambda: runc_tmp_files(pod.env), []) == []
    bundle = os.path.join(pod.env.daemon.runroot, "containers", cid)
    assert [f for f in os.listdir(bundle) if f.startswith("exec-")] == []
    pod.stop(cid, timeout=0)


def test_exec_sync_daemon_killed_mid_exec(pod):
    """The daemon dies during an ExecSync: nothing enforces that exec's
    timeout any more and nobody reads its output, so the next daemon kills
    its process at startup instead of waiting for its runc to end."""
    cid = pod.run("k", command=["sleep", "1000"])
    out = {}

    def run():
        try:
            exec_sync(pod, cid, ["sleep", "301"], timeout=600)
        except grpc.RpcError as e:
            out["e"] = e.code()

    t = threading.Thread(target=run)
    t.start()
    assert settled(lambda: bool(procs_with_cmdline(b"sleep\x00301\x00", cid)), True) is True
    env = pod.env
    os.kill(env.daemon.proc.pid, signal.SIGKILL)
    env.daemon.proc.wait()
    env.daemon.proc = None
    t.join(30)
    assert not t.is_alive() and "e" in out, out
    env.cri.close()
    env.start()  # ready within its 20 s, not after runc's timeout
    pod.cri = env.cri
    assert gone(b"sleep\x00301\x00", cid)
    assert settled(lambda: runc_execs(env), []) == []
    assert exec_sync(pod, cid, ["echo", "-n", "ok"]).stdout == b"ok"
    pod.stop(cid, timeout=0)
