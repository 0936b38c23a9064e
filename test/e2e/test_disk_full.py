"""Issue 11: a full disk. root lives on a small tmpfs of the test's own; a
filler file takes every block and empty files every inode. CreateContainer
and RunPodSandbox then fail with RESOURCE_EXHAUSTED naming "no space left",
and leave nothing half-made: no record (List), no container or pod dir, no
mount, no netns pin, no IP lease, no runc state, no monitor. Once the filler
is deleted both work again."""
import os

import grpc
import pytest

from crashenv import wait_for
from registry import registry_config
from test_container import Pod, expect_error, reg  # noqa: F401 (fixture)
from test_sandbox import READY, envf, monitors_under, mounts_under, pytestmark, sh  # noqa: F401

RX = grpc.StatusCode.RESOURCE_EXHAUSTED


def move_root_to_tmpfs(env, size="64m", inodes=16384):
    env.cri.close()
    assert env.daemon.stop() == 0
    env.daemon.proc = None
    root = env.daemon.root
    os.rename(root, root + ".disk")
    os.mkdir(root, 0o700)
    sh("mount", "-t", "tmpfs", "-o", "size=%s,nr_inodes=%d,mode=0700" % (size, inodes), "tmpfs",
       root)
    sh("cp", "-a", root + ".disk/.", root)
    env.start()


def fill(root, blocks):
    """Takes every block (when asked), then every inode."""
    d = os.path.join(root, "filler")
    os.mkdir(d)
    fd = os.open(os.path.join(d, "blocks"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if not blocks:
            return fill_inodes(d)
        for size in (1 << 20, 4096):  # then the last partial MiB
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    fill_inodes(d)


def fill_inodes(d):
    n = 0
    try:
        while True:
            open(os.path.join(d, "i%d" % n), "w").close()
            n += 1
    except OSError:
        pass
    return d


def snapshot(pod):
    env = pod.env
    netns = os.path.join(env.daemon.runroot, "netns")
    return {
        "pods": sorted(p.id for p in env.list()),
        "containers": sorted(c.id for c in pod.list()),
        "container dirs": sorted(os.listdir(os.path.join(env.daemon.root, "containers"))),
        "bundles": sorted(os.listdir(os.path.join(env.daemon.runroot, "containers"))),
        "pod dirs": sorted(os.listdir(os.path.join(env.daemon.root, "sandboxes"))),
        "mounts": sorted(m for m in mounts_under(env.base) if m != env.daemon.root),
        "netns pins": sorted(os.listdir(netns)) if os.path.isdir(netns) else [],
        "leases": sorted(env.net.leases()),
        "runc": sorted(env.runc_list()),
        "monitors": len(monitors_under(env.base)),
    }


@pytest.fixture
def tpod(envf, reg):
    env = envf(extra_config=registry_config(reg.host))
    move_root_to_tmpfs(env)
    p = Pod(env, reg)
    yield p
    # everything through the CRI, then the tmpfs goes (the fixture's leak
    # checks then run with the daemon stopped)
    try:
        if env.daemon.proc is not None and env.daemon.proc.poll() is None:
            for c in p.list():
                p.remove(c.id)
            for s in env.list():
                env.stop(s.id)
                env.remove(s.id)
            env.cri.close()
            assert env.daemon.stop() == 0
            env.daemon.proc = None
    finally:
        sh("umount", "-l", env.daemon.root, check=False)


# blocks and inodes: the first write (the record) fails; inodes only: the
# store still has room and the failure comes later (dirs, pod files), after
# the netns pin, CNI ADD and the infra start, which must all be undone
@pytest.mark.parametrize("blocks", [True, False], ids=["blocks", "inodes"])
def test_create_container_and_run_pod_on_a_full_disk(tpod, blocks):
    pod, env = tpod, tpod.env
    keep = pod.run("keep", command=["sleep", "600"])  # a container that was there before
    # a pod that was there before
    before = snapshot(pod)
    assert before["containers"] == [keep]
    filler = os.path.join(env.daemon.root, "filler")
    try:
        fill(env.daemon.root, blocks)
        d = expect_error(RX, pod.create, "c1", command=["sleep", "600"])
        print("refused:", d)
        assert "no space left" in d.lower(), d
        assert snapshot(pod) == before
        d = expect_error(RX, env.run, env.config("full"))
        print("refused:", d)
        assert "no space left" in d.lower(), d
        assert snapshot(pod) == before
        # what was there keeps working
        assert pod.status(keep).status.state == 1
    finally:
        sh("rm", "-rf", filler)
    # space is back: both work again
    cid = pod.run("c1", command=["sleep", "600"])
    p2 = env.run(env.config("full"))
    assert env.status(p2).status.state == READY
    pod.stop(cid, timeout=0)
    pod.remove(cid)
    env.stop(p2)
    env.remove(p2)


def test_remove_container_on_a_full_disk(tpod):
    """Issue 15: the renames into the trash need no space, but the record's
    LMDB commit does: on a full disk the first RemoveContainer fails with
    RESOURCE_EXHAUSTED (unless LMDB has free pages) and keeps the container
    listed; its trees already went to the trash, whose deleter gives their
    space back, so a retry (the filler still there) removes it."""
    pod, env = tpod, tpod.env
    cid = pod.run("gone", command=["sh", "-c", "head -c 2000000 /dev/zero > /blob; sleep 600"])
    blob = os.path.join(env.daemon.root, "containers", cid, "upper", "blob")
    assert wait_for(lambda: os.path.exists(blob) and os.path.getsize(blob) == 2000000)
    pod.stop(cid, timeout=0)
    filler = os.path.join(env.daemon.root, "filler")
    try:
        fill(env.daemon.root, True)
        trash = os.path.join(env.daemon.root, "trash")
        try:
            pod.remove(cid)  # LMDB may have free pages for the commit
        except grpc.RpcError as e:
            assert e.code() == RX and "no space left" in e.details().lower(), e
            assert [c.id for c in pod.list()] == [cid]
            assert wait_for(lambda: os.listdir(trash) == [], timeout=120), os.listdir(trash)
            pod.remove(cid)
        assert wait_for(lambda: os.listdir(trash) == [], timeout=120), os.listdir(trash)
        assert pod.list() == []
        assert not os.path.exists(os.path.join(env.daemon.root, "containers", cid))
    finally:
        sh("rm", "-rf", filler)
