"""Issue 15, RemoveContainer <= containerd: when a container's exit is
recorded, the runtime's delete and the rootfs unmount run in the background
(as containerd's shim does when a task exits), so RemoveContainer only
drops files and the record.

The runtime handler points at a wrapper script that logs every call
(test_recovery.wrap_runtime), so each test can tell who ran `delete`:
- after an exit, the runtime's delete runs and the rootfs is unmounted
  while ContainerStatus still says EXITED with its code and the log is
  readable; RemoveContainer then runs no `delete` of its own;
- a background delete that fails is done again by RemoveContainer, also
  after a restart in between;
- an exit seen while the daemon was down is released after the restart;
- Stop then Remove at once: one `delete`, no error.
Every test ends through the CRI with the fixtures' leak checks."""
import os
import time

import grpc
import pytest

import api_pb2
from test_container import EXITED, Pod, pod, reg  # noqa: F401
from test_monitor_death import ctr_pids
from test_recovery import calls, start_daemon, stop_daemon, wrap_runtime
from test_sandbox import envf, pytestmark  # noqa: F401


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == path for l in f)


def deletes(log, cid):
    return [a for a in calls(log, "delete") if cid in a]


def rootfs(pod, cid):
    return os.path.join(pod.env.daemon.root, "containers", cid, "rootfs")


def wait_released(pod, log, cid, timeout=30):
    """Until the runtime was asked to delete cid and its rootfs is unmounted."""
    end = time.time() + timeout
    while time.time() < end:
        if deletes(log, cid) and not mounted(rootfs(pod, cid)):
            return
        time.sleep(0.05)
    raise AssertionError("container %s not released: deletes %r, rootfs mounted %s" % (
        cid, deletes(log, cid), mounted(rootfs(pod, cid))))


def restart_wrapped(pod, body=""):
    log = wrap_runtime(pod.env, body)
    stop_daemon(pod)
    start_daemon(pod)
    return log


def test_exit_releases_runtime_and_rootfs_and_remove_skips_them(pod):
    log = restart_wrapped(pod)
    cid = pod.run("x", command=["sh", "-c", "echo bye; exit 3"])
    wait_released(pod, log, cid)
    # what needs the exited container still works
    st = pod.status(cid).status
    assert (st.state, st.exit_code, st.reason) == (EXITED, 3, "Error"), st
    assert pod.output(cid) == ["bye"]
    stats = pod.cri.call("ContainerStats", container_id=cid).stats
    assert stats.attributes.id == cid
    with pytest.raises(grpc.RpcError):
        pod.cri.call("ReopenContainerLog", container_id=cid)
    assert [c.state for c in pod.list()] == [EXITED]
    assert len(deletes(log, cid)) == 1, calls(log)
    pod.remove(cid)
    # before: RemoveContainer ran `runc delete` itself
    assert len(deletes(log, cid)) == 1, calls(log)
    assert pod.list() == []
    assert not os.path.exists(os.path.dirname(rootfs(pod, cid)))


def fail_first_delete(pod):
    """A wrapper body: the first `delete` fails (a marker file remembers it)."""
    marker = os.path.join(pod.env.base, "delete-failed")
    return ("case \" $* \" in *\" delete \"*) [ -e %s ] || { touch %s; exit 1; } ;; esac"
            % (marker, marker)), marker


def wait_for(path, timeout=30):
    end = time.time() + timeout
    while not os.path.exists(path) and time.time() < end:
        time.sleep(0.05)
    assert os.path.exists(path), path


def test_failed_background_delete_is_done_by_remove(pod):
    body, marker = fail_first_delete(pod)
    log = restart_wrapped(pod, body)
    cid = pod.run("f", command=["sh", "-c", "exit 4"])
    wait_for(marker)
    st = pod.wait_exit(cid)
    assert st.exit_code == 4, st
    # the background step gave up: the rootfs stays until Remove
    time.sleep(0.5)
    assert mounted(rootfs(pod, cid))
    pod.remove(cid)
    assert len(deletes(log, cid)) == 2, calls(log)
    assert not mounted(rootfs(pod, cid))
    assert pod.list() == []


def test_failed_background_delete_then_restart_then_remove(pod):
    body, marker = fail_first_delete(pod)
    log = restart_wrapped(pod, body)
    cid = pod.run("r", command=["sh", "-c", "exit 5"])
    wait_for(marker)
    pod.wait_exit(cid)
    stop_daemon(pod)
    start_daemon(pod)
    st = pod.status(cid).status
    assert (st.state, st.exit_code) == (EXITED, 5), st
    pod.remove(cid)
    assert len(deletes(log, cid)) == 2, calls(log)
    assert not mounted(rootfs(pod, cid))
    assert pod.list() == []


def test_exit_while_down_is_released_after_restart(pod):
    log = wrap_runtime(pod.env)
    cid = pod.run("d", command=["sh", "-c", "trap 'exit 6' TERM; while true; do sleep 0.1; done"])
    pid, _ = ctr_pids(pod, cid)
    stop_daemon(pod)
    exit_file = os.path.join(pod.env.daemon.runroot, "exits", cid)
    os.kill(pid, 15)
    wait_for(exit_file)
    start_daemon(pod)
    wait_released(pod, log, cid)
    st = pod.status(cid).status
    assert (st.state, st.exit_code) == (EXITED, 6), st
    pod.remove(cid)
    assert len(deletes(log, cid)) == 1, calls(log)


def test_stop_then_remove_at_once_deletes_once(pod):
    log = restart_wrapped(pod)
    cids = [pod.run("s%d" % i, command=["sleep", "600"]) for i in range(3)]
    for cid in cids:
        pod.stop(cid, timeout=0)
        pod.remove(cid)
    for cid in cids:
        assert len(deletes(log, cid)) == 1, calls(log)
    assert pod.list() == []
    # and a Stop whose exit is released before the Remove
    cid = pod.run("late", command=["sleep", "600"])
    pod.stop(cid, timeout=0)
    wait_released(pod, log, cid)
    pod.remove(cid)
    assert len(deletes(log, cid)) == 1, calls(log)


def test_events_stopped_before_deleted(pod):
    log = restart_wrapped(pod)
    stream = pod.cri.stub("GetContainerEvents")[0](api_pb2.GetEventsRequest(), timeout=60)
    time.sleep(0.5)  # subscribed
    cid = pod.run("e", command=["sh", "-c", "exit 0"])
    pod.wait_exit(cid)
    wait_released(pod, log, cid)
    pod.remove(cid)
    seen = []
    for ev in stream:
        if ev.container_id == cid:
            seen.append(ev.container_event_type)
            if ev.container_event_type == api_pb2.CONTAINER_DELETED_EVENT:
                break
    stream.cancel()
    assert seen[-2:] == [api_pb2.CONTAINER_STOPPED_EVENT, api_pb2.CONTAINER_DELETED_EVENT], seen
    assert seen.count(api_pb2.CONTAINER_STOPPED_EVENT) == 1, seen
