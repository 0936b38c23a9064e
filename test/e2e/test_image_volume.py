"""Image volumes (issue 13, CRI Mount.image + image_sub_path): an image in
the store mounted read-only into a container (a read-only overlay of its
layers under the container's runroot dir), the sub path resolved inside the
image only, ContainerStatus mounts carrying the image id, the layers kept
while the container exists (even after RemoveImage), unmounted on removal
and kept across a daemon restart. Refusals name the field and leave
nothing behind."""
import os

import grpc
import pytest

import api_pb2
from registry import busybox_registry, push_image, registry_config, tar_bytes
from test_container import Pod, exec_sync, expect_error  # noqa: F401
from test_sandbox import envf, mounts_under, pytestmark  # noqa: F401 (fixture, skip mark)


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-ivreg-") as r:
        # one layer, no /etc: a sub path that escaped to the host would find
        # the host's /etc, one kept inside finds nothing
        r.vol = push_image(r, "library/vol", "1", [tar_bytes([
            ("data", "dir", None, {}),
            ("data/hello.txt", "file", "hello from the image\n", {}),
            ("data/sub", "dir", None, {}),
            ("data/sub/inner.txt", "file", "inner\n", {}),
            ("escape", "symlink", "../../../../../../../../etc", {}),
            ("abs-escape", "symlink", "/etc", {}),
            ("inlink", "symlink", "/data/sub", {}),
        ])])
        yield r


@pytest.fixture
def pod(envf, reg):
    env = envf(extra_config=registry_config(reg.host))
    p = Pod(env, reg)
    p.vol_id = p.pull("vol:1")
    p.bb_id = p.pull("busybox")
    yield p
    for c in p.list():
        p.remove(c.id)
    assert ivol_mounts(p) == []


def ivol_mounts(p):
    return [m for m in mounts_under(p.env.base) if "/ivol/" in m]


def image_mount(path, image, sub="", readonly=True):
    return api_pb2.Mount(container_path=path, readonly=readonly, image_sub_path=sub,
                         image=api_pb2.ImageSpec(image=image, user_specified_image=image))


def assert_nothing_left(p):
    assert p.list() == []
    assert ivol_mounts(p) == []
    bundles = os.path.join(p.env.daemon.runroot, "containers")
    assert not os.path.isdir(bundles) or os.listdir(bundles) == []


def test_content_read_only_exec_sub_path_and_status(pod):
    script = ("cat /mnt/data/hello.txt; cat /mnt/in/inner.txt; /mnt/bb/bin/busybox echo exec-ok; "
              "(echo x > /mnt/bb/new) 2>/dev/null || echo ro-ok; "
              "(echo x > /mnt/data/new) 2>/dev/null || echo ro-ok2; ls /mnt/bb/bin/sh")
    mounts = [image_mount("/mnt/bb", pod.bb_id),
              image_mount("/mnt/data", "vol:1", "data"),
              image_mount("/mnt/in", "vol:1", "inlink")]
    cid = pod.run("c", command=["sh", "-c", script], mounts=mounts)
    out = pod.output(cid)
    assert out == ["hello from the image", "inner", "exec-ok", "ro-ok", "ro-ok2", "/mnt/bb/bin/sh"]
    st = pod.status(cid).status
    by_path = {m.container_path: m for m in st.mounts}
    assert by_path["/mnt/bb"].image.image_ref == pod.bb_id
    assert by_path["/mnt/data"].image.image_ref == pod.vol_id
    assert by_path["/mnt/data"].image.image == "vol:1"
    assert by_path["/mnt/data"].image_sub_path == "data"
    assert by_path["/mnt/data"].readonly
    assert len(ivol_mounts(pod)) == 3
    pod.remove(cid)
    assert_nothing_left(pod)


@pytest.mark.parametrize("mount,code,field", [
    (image_mount("/v", "vol:1", readonly=False), grpc.StatusCode.INVALID_ARGUMENT,
     "mounts[0].readonly"),
    (image_mount("/v", "vol:1", "../etc"), grpc.StatusCode.INVALID_ARGUMENT,
     "mounts[0].image_sub_path"),
    (image_mount("/v", "vol:1", "/etc"), grpc.StatusCode.INVALID_ARGUMENT,
     "mounts[0].image_sub_path"),
    (image_mount("/v", "vol:1", "not-there"), grpc.StatusCode.NOT_FOUND,
     "mounts[0].image_sub_path"),
    (image_mount("/v", "vol:1", "escape"), grpc.StatusCode.NOT_FOUND,
     "mounts[0].image_sub_path"),
    (image_mount("/v", "vol:1", "abs-escape/passwd"), grpc.StatusCode.NOT_FOUND,
     "mounts[0].image_sub_path"),
    (image_mount("/v", "never-pulled:1"), grpc.StatusCode.NOT_FOUND, "mounts[0].image.image"),
    (api_pb2.Mount(container_path="/v", host_path="/tmp", image_sub_path="x"),
     grpc.StatusCode.INVALID_ARGUMENT, "mounts[0].image_sub_path"),
])
def test_refused_and_nothing_left(pod, mount, code, field):
    msg = expect_error(code, pod.create, "bad", command=["true"], mounts=[mount])
    assert field in msg, msg
    assert_nothing_left(pod)


def test_held_across_remove_image_and_restart(pod):
    layers = os.path.join(pod.env.daemon.root, "layers")
    before = sorted(os.listdir(layers))
    cid = pod.run("c", command=["sleep", "600"],
                  mounts=[image_mount("/mnt/data", "vol:1", "data")])
    # RemoveImage drops the name and record; the layers stay while in use
    pod.cri.call("RemoveImage", image=api_pb2.ImageSpec(image="vol:1"))
    imgs = pod.cri.call("ListImages").images
    assert pod.vol_id not in [i.id for i in imgs]
    assert sorted(os.listdir(layers)) == before
    assert exec_sync(pod, cid, ["cat", "/mnt/data/hello.txt"]).stdout == \
        b"hello from the image\n"
    pod.env.restart()
    pod.cri = pod.env.cri
    assert len(ivol_mounts(pod)) == 1
    st = pod.status(cid).status
    assert [m.image.image_ref for m in st.mounts if m.container_path == "/mnt/data"] == \
        [pod.vol_id]
    assert exec_sync(pod, cid, ["cat", "/mnt/data/sub/inner.txt"]).stdout == b"inner\n"
    pod.stop(cid, timeout=0)
    pod.remove(cid)
    assert_nothing_left(pod)
