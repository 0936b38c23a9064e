"""Issue 11: a dead monitor is noticed. The exit watcher holds a pidfd on
every container's (and pod infra's) cricket-conmon and on the container's
process: a monitor SIGKILLed while its container runs leaves the container
RUNNING but with exec, attach, log reopen failing FAILED_PRECONDITION
(naming the monitor); once the process ends the container is EXITED with
reason ContainerMonitorDied and the kernel's exit status; Stop works
without waiting for an exit file that never comes. Both orders (monitor
first, container first), the pod's infra, and monitors adopted after a
daemon restart. Every test ends through the CRI with the fixtures' leak
checks (no monitor, runc state, mount, lease left)."""
import json
import os
import signal
import time

import grpc
import pytest

import api_pb2
from test_container import EXITED, RUNNING, Pod, expect_error, pod, reg  # noqa: F401
from test_sandbox import NOTREADY, READY, envf, pytestmark  # noqa: F401

REASON = "ContainerMonitorDied"
FP = grpc.StatusCode.FAILED_PRECONDITION


def ppid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError("no PPid for %d" % pid)


def ctr_pids(pod, cid):
    """(container init pid, its monitor's pid)."""
    pid = json.loads(pod.status(cid, verbose=True).info["info"])["pid"]
    mon = ppid_of(pid)
    with open("/proc/%d/cmdline" % mon, "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[0].endswith(b"cricket-conmon") and cid.encode() in argv, argv
    return pid, mon


def infra_pids(env, pid_):
    pid = env.info(pid_)["pid"]
    return pid, ppid_of(pid)


def alive(pid):
    """Runs (a zombie does not: this host's init may be slow to reap)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def kill_wait(pid, sig=signal.SIGKILL):
    """SIGKILL pid and wait until it no longer runs (our tests' own processes)."""
    os.kill(pid, sig)
    end = time.time() + 10
    while alive(pid) and time.time() < end:
        time.sleep(0.05)


def exec_sync(pod, cid):
    fn, req_cls = pod.cri.stub("ExecSync")
    return fn(req_cls(container_id=cid, cmd=["true"], timeout=10), timeout=40)


def wait_monitor_lost(pod, cid, timeout=10):
    """ExecSync fails FAILED_PRECONDITION once the death was noticed (the
    watcher runs on its own thread: bounded wait, not a timing assertion)."""
    end = time.time() + timeout
    while True:
        try:
            exec_sync(pod, cid)
        except grpc.RpcError as e:
            if e.code() == FP:
                return e.details()
            raise
        if time.time() > end:
            raise AssertionError("the monitor's death of %s was not noticed" % cid)
        time.sleep(0.1)


def assert_monitor_errors(pod, cid):
    msg = wait_monitor_lost(pod, cid)
    assert "monitor" in msg and cid in msg, msg
    for method in ("ReopenContainerLog", "Exec", "Attach"):
        kw = {"container_id": cid}
        if method != "ReopenContainerLog":
            kw["stdout"] = True
        if method == "Exec":
            kw["cmd"] = ["true"]
        d = expect_error(FP, pod.cri.call, method, **kw)
        assert "monitor" in d, (method, d)


def wait_pod_state(env, pid, want, timeout=10):
    end = time.time() + timeout
    while env.status(pid).status.state != want and time.time() < end:
        time.sleep(0.05)
    return env.status(pid).status.state


def test_monitor_first_then_container(pod):
    cid = pod.run("m1", command=["sleep", "600"])
    pid, mon = ctr_pids(pod, cid)
    kill_wait(mon)
    assert_monitor_errors(pod, cid)
    # the process still runs: RUNNING, as the truth is
    assert pod.status(cid).status.state == RUNNING
    os.kill(pid, signal.SIGKILL)
    st = pod.wait_exit(cid)
    assert st.reason == REASON, st
    assert st.exit_code == 137, st  # the kernel's status (pidfd exit info)
    assert "monitor" in st.message
    pod.remove(cid)


def test_container_first_then_monitor(pod):
    cid = pod.run("c1", command=["sh", "-c", "sleep 600"])
    pid, mon = ctr_pids(pod, cid)
    # the monitor cannot reap or write anything while stopped: the container
    # ends first, then the monitor dies without an exit file
    os.kill(mon, signal.SIGSTOP)
    try:
        os.kill(pid, signal.SIGTERM)  # sh as pid 1 ignores TERM: use KILL
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    finally:
        kill_wait(mon)
    st = pod.wait_exit(cid)
    assert (st.reason, st.exit_code) == (REASON, 137), st
    pod.remove(cid)


def test_stop_with_a_dead_monitor(pod):
    cid = pod.run("s1", command=["sleep", "600"])
    _, mon = ctr_pids(pod, cid)
    kill_wait(mon)
    wait_monitor_lost(pod, cid)
    # before: StopContainer waited 10 s for an exit file after SIGKILL and
    # failed DEADLINE_EXCEEDED ("did not exit ... after SIGKILL")
    pod.stop(cid, timeout=1)
    st = pod.status(cid).status
    assert st.state == EXITED and st.exit_code == 137 and st.reason == REASON, st
    pod.remove(cid)


def test_start_with_a_dead_monitor_fails(pod):
    cid = pod.create("n1", command=["sleep", "600"])
    _, mon = ctr_pids(pod, cid)
    kill_wait(mon)
    time.sleep(1)  # a CREATED container shows nothing to poll for; the watcher is quick
    d = expect_error(FP, pod.start, cid)
    assert "monitor" in d, d
    pod.stop(cid, timeout=0)
    st = pod.status(cid).status
    assert st.state == EXITED and st.reason == REASON, st
    pod.remove(cid)


def test_infra_monitor_first(pod):
    env = pod.env
    cid = pod.run("in1", command=["sleep", "600"])
    pid, mon = infra_pids(env, pod.id)
    assert env.status(pod.id).status.state == READY
    kill_wait(mon)
    assert wait_pod_state(env, pod.id, NOTREADY) == NOTREADY
    # the infra still runs; Stop kills it without waiting for an exit file
    env.stop(pod.id)
    assert not alive(pid)
    st = pod.status(cid).status
    assert st.state == EXITED, st
    env.remove(pod.id)


def test_infra_container_first(pod):
    env = pod.env
    pid, mon = infra_pids(env, pod.id)
    os.kill(mon, signal.SIGSTOP)
    try:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    finally:
        kill_wait(mon)
    assert wait_pod_state(env, pod.id, NOTREADY) == NOTREADY
    env.stop(pod.id)
    env.remove(pod.id)


def test_monitors_adopted_after_restart(pod):
    a = pod.run("a", command=["sleep", "600"])
    b = pod.run("b", command=["sleep", "601"])
    a_pid, a_mon = ctr_pids(pod, a)
    _, b_mon = ctr_pids(pod, b)
    _, infra_mon = infra_pids(pod.env, pod.id)
    pod.env.cri.close()
    assert pod.env.daemon.stop() == 0
    pod.env.daemon.proc = None
    kill_wait(b_mon)  # dies while the daemon is down
    pod.env.start()
    pod.cri = pod.env.cri
    assert_monitor_errors(pod, b)
    exec_sync(pod, a)  # a's monitor lives: exec works
    kill_wait(a_mon)  # dies under the restarted daemon: noticed too
    wait_monitor_lost(pod, a)
    os.kill(a_pid, signal.SIGKILL)
    st = pod.wait_exit(a)
    assert (st.reason, st.exit_code) == (REASON, 137), st
    kill_wait(infra_mon)
    assert wait_pod_state(pod.env, pod.id, NOTREADY) == NOTREADY
    pod.env.stop(pod.id)
    st = pod.status(b).status
    assert st.state == EXITED and st.reason == REASON, st
    pod.env.remove(pod.id)
