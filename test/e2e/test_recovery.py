"""Issue 15: a restart reads what the monitors and exit files say and asks
the runtime only where they are silent.

The daemon is restarted with its runtime handler pointing at a wrapper
script that logs every call (then runs the real runc), so each test can
tell which containers recovery asked the runtime about:
- a running container (and pod infra) whose process runs under its live
  monitor: RUNNING (READY) with no runtime call, and adopted (exec works,
  Stop works);
- an exit file written while the daemon was down: EXITED with its code,
  no runtime call;
- monitor and process dead, no exit file: the runtime is asked, and the
  container is EXITED with reason ContainerMonitorDied (issue 11);
- a CREATED container: the runtime is asked (a start may have run after
  the record was written), and it stays CREATED and can start;
- several containers the monitors are silent about: their runtime calls
  run at once (the wrapper logs overlapping calls), not one after another.
Every test ends through the CRI with the fixtures' leak checks."""
import json
import os
import signal
import stat
import time

import api_pb2
from test_container import EXITED, RUNNING, Pod, pod, reg  # noqa: F401
from test_monitor_death import REASON, alive, ctr_pids, exec_sync, infra_pids, kill_wait
from test_sandbox import READY, envf, pytestmark  # noqa: F401
import bundle


def wrap_runtime(env, body=""):
    """Points the runtime handler at a wrapper that appends `<pid> <args>`
    to a log (plus `body`, a shell snippet, before the real runc); returns
    the log's path. Takes effect at the next daemon start."""
    log = os.path.join(env.base, "runtime-calls.log")
    path = os.path.join(env.base, "runc-wrapper")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho \"$$ $*\" >> %s\n%s\nexec %s \"$@\"\n" % (log, body, bundle.RUNC))
    os.chmod(path, stat.S_IRWXU)
    with open(env.daemon.config) as f:
        text = f.read()
    needle = "path: %s\n" % bundle.RUNC
    assert needle in text, text
    with open(env.daemon.config, "w") as f:
        f.write(text.replace(needle, "path: %s\n" % path, 1))
    return log


def stop_daemon(pod):
    pod.env.cri.close()
    assert pod.env.daemon.stop() == 0, pod.env.daemon.logs()
    pod.env.daemon.proc = None


def start_daemon(pod):
    pod.env.start()
    pod.cri = pod.env.cri


def calls(log, verb=None):
    """The logged runtime calls (argument lists), `verb` ones only if given."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        out = [l.split()[1:] for l in f]
    return [a for a in out if verb is None or verb in a]


def test_live_monitors_need_no_runtime_call(pod):
    a = pod.run("a", command=["sleep", "600"])
    b = pod.run("b", command=["sleep", "601"])
    a_pid, a_mon = ctr_pids(pod, a)
    infra_pid, _ = infra_pids(pod.env, pod.id)
    log = wrap_runtime(pod.env)
    stop_daemon(pod)
    start_daemon(pod)
    # before: one `runc state` per container and per pod infra, in sequence
    assert calls(log, "state") == [], calls(log)
    assert {c.id: c.state for c in pod.list()} == {a: RUNNING, b: RUNNING}
    st = pod.status(a, verbose=True)
    assert json.loads(st.info["info"])["pid"] == a_pid
    assert pod.env.status(pod.id).status.state == READY
    assert pod.env.info(pod.id)["pid"] == infra_pid
    # adopted: exec goes through the monitor, Stop sees the exit file
    assert exec_sync(pod, a).exit_code == 0
    pod.stop(b, timeout=0)
    assert pod.status(b).status.state == EXITED
    # the monitor still watched: its death is noticed after the restart
    kill_wait(a_mon)
    os.kill(a_pid, signal.SIGKILL)
    st = pod.wait_exit(a)
    assert st.reason == REASON, st


def test_exit_file_written_while_down_needs_no_runtime_call(pod):
    cmd = ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done"]
    cid = pod.run("t", command=cmd)
    pid, mon = ctr_pids(pod, cid)
    log = wrap_runtime(pod.env)
    stop_daemon(pod)
    exit_file = os.path.join(pod.env.daemon.runroot, "exits", cid)
    os.kill(pid, signal.SIGTERM)
    end = time.time() + 20
    while not os.path.exists(exit_file) and time.time() < end:
        time.sleep(0.05)
    assert os.path.exists(exit_file)
    start_daemon(pod)
    st = pod.status(cid).status
    assert (st.state, st.exit_code) == (EXITED, 7), st
    assert [a for a in calls(log) if cid in a and "state" in a] == [], calls(log)
    assert calls(log, "state") == [], calls(log)
    assert not alive(mon)


def test_monitor_and_process_dead_without_exit_file(pod):
    cid = pod.run("d", command=["sleep", "600"])
    pid, mon = ctr_pids(pod, cid)
    log = wrap_runtime(pod.env)
    stop_daemon(pod)
    # the monitor cannot reap or write anything while stopped: the
    # container ends first, then the monitor dies without an exit file
    os.kill(mon, signal.SIGSTOP)
    try:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    finally:
        kill_wait(mon)
    assert not os.path.exists(os.path.join(pod.env.daemon.runroot, "exits", cid))
    start_daemon(pod)
    st = pod.status(cid).status
    assert st.state == EXITED and st.reason == REASON and st.exit_code == 255, st
    # the monitors were silent about it: the runtime was asked, about it only
    asked = calls(log, "state")
    assert [cid] == [a[-1] for a in asked], asked
    assert pod.env.status(pod.id).status.state == READY


def test_silent_monitors_are_asked_about_at_once(pod):
    cids = [pod.run("s%d" % i, command=["sleep", "600"]) for i in range(3)]
    mons = [ctr_pids(pod, c)[1] for c in cids]
    # every call lasts a while and logs its end: overlapping calls show
    log = wrap_runtime(pod.env, body="trap 'echo \"$$ end\" >> %s' EXIT; sleep 0.3; "
                       "%s \"$@\"; exit $?" % (os.path.join(pod.env.base, "runtime-calls.log"),
                                               bundle.RUNC))
    stop_daemon(pod)
    for m in mons:
        kill_wait(m)  # the processes run on, their monitors are gone
    start_daemon(pod)
    assert {c.id: c.state for c in pod.list()} == {c: RUNNING for c in cids}
    with open(log) as f:
        lines = [l.split() for l in f]
    state_pids = {l[0] for l in lines if "state" in l}
    assert len(state_pids) == 3, lines
    # before: each call ended before the next began
    first_end = next(i for i, l in enumerate(lines) if l[1] == "end" and l[0] in state_pids)
    begun = [l[0] for l in lines[:first_end] if "state" in l]
    assert len(begun) > 1, lines
    for c in cids:
        pod.stop(c, timeout=0)
        assert pod.status(c).status.state == EXITED


def test_created_container_is_asked_about_and_starts(pod):
    cid = pod.create("n", command=["sleep", "600"])
    log = wrap_runtime(pod.env)
    stop_daemon(pod)
    start_daemon(pod)
    asked = calls(log, "state")
    assert [cid] == [a[-1] for a in asked], asked
    assert pod.status(cid).status.state == api_pb2.CONTAINER_CREATED
    pod.start(cid)
    assert pod.status(cid).status.state == RUNNING
    assert exec_sync(pod, cid).exit_code == 0
