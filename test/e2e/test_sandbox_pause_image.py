"""image.pause_image: the infra runs from a configured image (pulled when
absent, mounted read-only) instead of the built-in pause rootfs."""
import os

import pytest

import api_pb2
from registry import Registry, busybox_layer, make_tmp, push_image, registry_config, rmtree
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)


@pytest.fixture(scope="module")
def reg():
    base = make_tmp("cricket-reg-pause-")
    r = Registry(base)
    try:
        # a "pause" that sleeps: its Entrypoint + Cmd become the infra's argv
        r.pause = push_image(r, "library/mypause", "1", [busybox_layer()],
                             config_extra={"Entrypoint": ["/bin/sleep"], "Cmd": ["86400"]})
        yield r
    finally:
        r.stop()
        rmtree(base)


def mounts_at(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split() for l in f if l.split()[4] == path]


def test_pause_image_is_pulled_mounted_and_released(envf, reg):
    env = envf(extra_config=registry_config(reg.host, "  pause_image: mypause:1\n"))
    spec = api_pb2.ImageSpec(image="mypause:1")
    assert not env.cri.call("ImageStatus", image=spec).HasField("image")

    pid = env.run(env.config("p"))
    st = env.status(pid).status
    assert st.state == api_pb2.SANDBOX_READY and st.network.ip
    # pulled on demand, and pinned as the pause image
    img = env.cri.call("ImageStatus", image=spec).image
    assert img.id == reg.pause.id and img.pinned
    info = env.info(pid)
    assert info["runtimeSpec"]["process"]["args"] == ["/bin/sleep", "86400"]
    rootfs = os.path.join(env.daemon.root, "pause", "pods", pid, "rootfs")
    assert info["runtimeSpec"]["root"]["path"] == rootfs
    assert len(mounts_at(rootfs)) == 1
    assert info["runtimeSpec"]["root"]["readonly"] is True
    with open("/proc/%d/cmdline" % info["pid"], "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"/bin/sleep", b"86400"]

    env.stop(pid)
    assert mounts_at(rootfs)  # stopped pods keep their rootfs until removal
    env.remove(pid)
    assert mounts_at(rootfs) == [] and not os.path.exists(os.path.dirname(rootfs))
    assert env.leaks() == {}


def test_missing_pause_image_fails_run_and_leaves_nothing(envf, reg):
    env = envf(extra_config=registry_config(reg.host, "  pause_image: nosuch:1\n"))
    with pytest.raises(Exception) as e:
        env.run(env.config("q"))
    assert "nosuch" in str(e.value)
    assert env.list() == []
    assert not os.listdir(os.path.join(env.daemon.root, "pause", "pods")) \
        if os.path.isdir(os.path.join(env.daemon.root, "pause", "pods")) else True
    assert env.leaks() == {}
