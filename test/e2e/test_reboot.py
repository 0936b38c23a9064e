"""Issue 11: a reboot, simulated. The daemon stops; then everything a reboot
takes away goes: container processes and their monitors (killed), every
mount under the test's base (rootfs overlays, shm, netns pins: the pods'
network namespaces die with them), the runtime's state dir, and runroot
itself. Only root (records, CNI result cache) and the host-local lease
files (on disk, like /var/lib/cni) stay. The daemon restarted on the same
root must show the pods NOTREADY and the containers EXITED with reason
Unknown; Stop and Remove succeed, and Stop releases the IP leases."""
import json
import os
import shutil
import signal
import time

import pytest

import api_pb2
import bundle
from test_container import EXITED, Pod, pod, reg  # noqa: F401 (fixtures)
from test_sandbox import NOTREADY, READY, envf, monitors_under, mounts_under, pytestmark, sh  # noqa: F401


def runc_pid(env, cid):
    r = sh(bundle.RUNC, "--root", env.runc_root, "state", cid, check=False)
    return json.loads(r.stdout)["pid"] if r.returncode == 0 else 0


def wait_gone(pids, timeout=10):
    end = time.time() + timeout
    for pid in pids:
        while time.time() < end:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().split(")")[-1].split()[0] in ("Z", "X"):
                        break
            except OSError:
                break
            time.sleep(0.05)


def cgroups_of(ids):
    """cgroup dirs named after our containers (a reboot empties cgroupfs)."""
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if any(i in d for i in ids):
                found.append(os.path.join(root, d))
    return sorted(found, key=len, reverse=True)


def reboot(env, ids):
    """Everything a reboot takes, with the daemon stopped."""
    env.cri.close()
    assert env.daemon.stop() == 0, env.daemon.logs()
    env.daemon.proc = None
    pids = [p for p in (runc_pid(env, i) for i in env.runc_list()) if p > 0]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_gone(pids)
    mons = monitors_under(env.base)
    for pid in mons:
        os.kill(pid, signal.SIGKILL)
    wait_gone(mons)
    for m in sorted(mounts_under(env.base), key=len, reverse=True):
        sh("umount", m)
    assert mounts_under(env.base) == []
    for cg in cgroups_of(ids):
        try:
            os.rmdir(cg)
        except OSError:
            pass
    shutil.rmtree(env.runc_root, ignore_errors=True)
    shutil.rmtree(env.daemon.runroot)
    # the veths go with the network namespaces (the kernel frees those
    # asynchronously: bounded wait)
    end = time.time() + 20
    while env.net.veths() and time.time() < end:
        time.sleep(0.1)
    assert not env.net.veths()


def test_reboot_keeps_root_and_loses_runroot(pod):
    env = pod.env
    running = pod.run("running", command=["sleep", "600"])
    created = pod.create("created", command=["sleep", "600"])
    done = pod.run("done", command=["sh", "-c", "exit 3"])
    assert pod.wait_exit(done).exit_code == 3
    other = env.run(env.config("other"))  # a second pod, without containers
    # a third without an infra process (pid CONTAINER): only its pins and
    # runroot say it is alive, and a reboot takes both
    noinfra = env.run(env.config("noinfra", linux=api_pb2.LinuxPodSandboxConfig(
        security_context=api_pb2.LinuxSandboxSecurityContext(
            namespace_options=api_pb2.NamespaceOption(pid=api_pb2.CONTAINER)))))
    assert len(env.net.leases()) == 3
    reboot(env, [pod.id, other, noinfra, running, created, done])
    env.start()
    pod.cri = env.cri

    for p in (pod.id, other, noinfra):
        assert env.status(p).status.state == NOTREADY
    for cid in (running, created):
        st = pod.status(cid).status
        assert st.state == EXITED and st.reason == "Unknown" and st.exit_code == 255, st
        assert "lost" in st.message
    st = pod.status(done).status  # its exit file went with runroot: the record kept it
    assert st.state == EXITED and st.exit_code == 3, st
    assert len(env.net.leases()) == 3  # nothing released them yet

    # kubelet's cleanup: stop and remove everything, which must all work
    for cid in (running, created, done):
        pod.stop(cid, timeout=0)
    env.stop(pod.id)
    env.stop(other)
    env.stop(noinfra)
    assert env.net.leases() == []
    for cid in (running, created, done):
        pod.remove(cid)
    env.remove(pod.id)
    env.remove(other)
    env.remove(noinfra)
    assert env.list() == [] and pod.list() == []
    # and the node works again: a new pod and container on the same root
    p2 = env.run(env.config("again"))
    cfg = env.config("again")
    c2 = pod.create("again", pod=p2, sandbox_cfg=cfg, command=["sleep", "600"])
    pod.start(c2)
    assert env.status(p2).status.state == READY
    pod.stop(c2, timeout=0)
    pod.remove(c2)
    env.stop(p2)
    env.remove(p2)
    assert env.net.leases() == []
