"""ImageService against a real registry (Debian's docker-registry on
127.0.0.1): pull, list, status, remove, formats, layers, tags, users."""
import json
import os
import shutil
import stat
import subprocess
import time

import grpc
import pytest

import api_pb2
from conftest import Cri, image_spec, listed, pull
from registry import (Proxy, busybox_layer, busybox_registry, make_tmp, push_image, push_index,
                      registry_config, rmtree, tar_bytes, tree_files)


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-reg-") as r:
        yield r

@pytest.fixture
def proxy(reg):
    p = Proxy(reg.port)
    yield p
    p.stop()


@pytest.fixture
def images(daemon_factory, reg):
    d = daemon_factory(config_text=registry_config(reg.host))
    c = Cri(d.socket)
    yield d, c
    c.close()
    rc = d.stop()
    assert rc == 0, d.logs()


def status(cri, ref, verbose=False):
    return cri.call("ImageStatus", image=image_spec(ref), verbose=verbose)


def store_empty(root):
    """blobs, layers and temp dirs hold nothing."""
    left = (tree_files(os.path.join(root, "blobs/sha256")) +
            tree_files(os.path.join(root, "blobs/ingest")) +
            [f for f in tree_files(os.path.join(root, "layers")) if f != "tmp"])
    return left


def test_pull_list_status_remove(images, reg):
    d, cri = images
    img = reg.busybox
    assert pull(cri, "busybox") == img.id
    items = listed(cri)
    assert len(items) == 1
    i = items[0]
    assert i.id == img.id
    assert list(i.repo_tags) == ["docker.io/library/busybox:latest"]
    assert list(i.repo_digests) == ["docker.io/library/busybox@" + img.manifest_digest]
    assert i.size > 0
    assert not i.HasField("uid") and i.username == ""
    # every name resolves to the identical Image
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox:latest",
                "library/busybox", img.id, img.id[7:], img.id[7:20],
                "docker.io/library/busybox@" + img.manifest_digest):
        assert status(cri, ref).image == i, ref
    info = json.loads(status(cri, "busybox", verbose=True).info["info"])
    assert info["imageSpec"]["config"]["Cmd"] == ["/bin/sh"]
    assert info["imageSpec"]["rootfs"]["diff_ids"] == img.diff_ids
    layer = info["layerDirs"][0]
    assert layer.startswith(d.root + "/layers/")
    assert os.access(os.path.join(layer, "bin/busybox"), os.X_OK)
    assert os.readlink(os.path.join(layer, "bin/sh")) == "busybox"
    assert os.stat(os.path.join(layer, "tmp")).st_mode & 0o7777 == 0o1777
    assert os.stat(os.path.join(layer, "etc/passwd")).st_mtime == 1700000000
    fs = cri.call("ImageFsInfo").image_filesystems[0]
    assert fs.used_bytes.value > 1000000

    cri.call("RemoveImage", image=image_spec("busybox"))
    assert listed(cri) == []
    assert not status(cri, "busybox").HasField("image")
    assert not status(cri, img.id).HasField("image")
    assert store_empty(d.root) == []
    cri.call("RemoveImage", image=image_spec("busybox"))  # idempotent
    cri.call("RemoveImage", image=image_spec(img.id))


def test_status_of_missing_image_is_empty(images):
    _, cri = images
    r = status(cri, "docker.io/library/nothing:here")
    assert not r.HasField("image")
    assert not status(cri, "sha256:" + "a" * 64).HasField("image")


def test_invalid_reference(images):
    _, cri = images
    for bad in ("Busybox", "busybox:bad:tag", "busybox@sha256:123", "-x", "a//b"):
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert bad in e.value.details()


def test_missing_tag_names_host_and_status(images, reg):
    _, cri = images
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "busybox:nope")
    msg = e.value.details()
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert reg.host in msg and "404" in msg and "MANIFEST_UNKNOWN" in msg, msg
    assert listed(cri) == []


def test_connect_refused_names_host(daemon_factory):
    host = "127.0.0.1:1"
    d = daemon_factory(config_text=registry_config(host))
    cri = Cri(d.socket)
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "busybox")
    assert host in e.value.details()
    cri.close()
    d.stop()


def test_formats_docker_zstd_plain_index(images, reg):
    d, cri = images
    extra = tar_bytes([("hello.txt", "file", "hi\n", {})])
    dock = push_image(reg, "library/dock", "v1", [busybox_layer(), extra], docker=True,
                      config_extra={"Labels": {"kind": "docker"}})
    zst = push_image(reg, "library/zst", "v1", [busybox_layer(), extra], compression="zstd")
    plain = push_image(reg, "library/plain", "v1", [extra], compression="none")
    arm = push_image(reg, "library/multi", "arm", [extra], arch="arm64",
                     config_extra={"Labels": {"arch": "arm64"}})
    amd = push_image(reg, "library/multi", "amd", [extra, extra],
                     config_extra={"Labels": {"arch": "amd64"}})
    index_digest = push_index(reg, "library/multi", "latest",
                              [(("arm64", "v8"), arm), (("amd64", ""), amd)])
    assert pull(cri, "dock:v1") == dock.id
    assert pull(cri, "zst:v1") == zst.id
    assert pull(cri, "plain:v1") == plain.id
    assert pull(cri, "multi") == amd.id
    m = status(cri, "multi").image
    assert list(m.repo_digests) == ["docker.io/library/multi@" + index_digest]
    # by digest: no tags, the digest as given
    assert pull(cri, "docker.io/library/zst@" + zst.manifest_digest) == zst.id
    z = status(cri, "docker.io/library/zst@" + zst.manifest_digest).image
    assert list(z.repo_tags) == ["docker.io/library/zst:v1"]
    info = json.loads(status(cri, "zst:v1", verbose=True).info["info"])
    assert open(os.path.join(info["layerDirs"][1], "hello.txt")).read() == "hi\n"
    # the same layers are shared between dock and zst (same chain ids)
    dinfo = json.loads(status(cri, "dock:v1", verbose=True).info["info"])
    assert dinfo["chainIDs"] == info["chainIDs"]


def test_whiteouts_and_metadata(images, reg):
    d, cri = images
    low = tar_bytes([
        ("etc", "dir", None, {}), ("etc/gone", "file", "x", {}),
        ("d", "dir", None, {}), ("d/old", "file", "old", {}),
        ("keep", "file", "k", {"mode": 0o4755, "uid": 1000, "gid": 1001,
                               "xattrs": {"user.test": "v"}}),
        ("hard", "hardlink", "keep", {}),
        ("dev", "dir", None, {}), ("dev/null2", "chardev", (1, 3), {"mode": 0o666}),
    ])
    up = tar_bytes([
        ("etc", "dir", None, {}), ("etc/.wh.gone", "file", "", {}),
        ("d", "dir", None, {}), ("d/.wh..wh..opq", "file", "", {}),
        ("d/new", "file", "new", {}),
    ])
    img = push_image(reg, "library/wh", "v1", [low, up])
    assert pull(cri, "wh:v1") == img.id
    dirs = json.loads(status(cri, "wh:v1", verbose=True).info["info"])["layerDirs"]
    lo, hi = dirs
    st = os.stat(os.path.join(lo, "keep"))
    assert st.st_mode & 0o7777 == 0o4755 and (st.st_uid, st.st_gid) == (1000, 1001)
    assert os.getxattr(os.path.join(lo, "keep"), "user.test") == b"v"
    assert os.stat(os.path.join(lo, "hard")).st_ino == st.st_ino
    dev = os.stat(os.path.join(lo, "dev/null2"))
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1
    wh = os.lstat(os.path.join(hi, "etc/gone"))
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(os.path.join(hi, "d"), "trusted.overlay.opaque") == b"y"
    assert not os.path.exists(os.path.join(hi, "d/.wh..wh..opq"))
    # a real overlay mount shows the merged view
    mnt = make_tmp("cricket-ovl-")
    try:
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            "lowerdir=%s:%s" % (hi, lo), mnt], capture_output=True)
        if r.returncode != 0:
            pytest.skip("overlay mount unavailable: %s" % r.stderr)
        try:
            assert not os.path.exists(os.path.join(mnt, "etc/gone"))
            assert sorted(os.listdir(os.path.join(mnt, "d"))) == ["new"]
            assert open(os.path.join(mnt, "keep")).read() == "k"
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        rmtree(mnt)


def test_remove_by_one_tag_removes_all_tags(images, reg):
    """critest v1.36: RemoveImage of one tag removes the image and its other
    tags (kubelet's image GC and critest expect the image gone)."""
    d, cri = images
    img = push_image(reg, "library/tags", "one", [busybox_layer()])
    reg.push_manifest("library/tags", "two", img.manifest,
                      "application/vnd.oci.image.manifest.v1+json")
    assert pull(cri, "tags:one") == img.id
    assert pull(cri, "tags:two") == img.id
    items = listed(cri)
    assert len(items) == 1
    assert sorted(items[0].repo_tags) == ["docker.io/library/tags:one",
                                          "docker.io/library/tags:two"]
    cri.call("RemoveImage", image=image_spec("tags:one"))
    for name in ("tags:one", "tags:two", img.id):
        assert not status(cri, name).HasField("image"), name
    assert listed(cri) == []
    cri.call("RemoveImage", image=image_spec("tags:two"))  # idempotent
    assert store_empty(d.root) == []


def test_remove_by_one_registry_removes_other_registries(daemon_factory, reg):
    """The same image pulled through two registry names (both mapped to the
    test registry): removing one name removes both (critest v1.36 does so
    with registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9)."""
    d = daemon_factory(config_text=(
        "image:\n  registries:\n    reg-a.test:\n      location: %s\n"
        "    reg-b.test:\n      location: %s\n  insecure_registries: [\"%s\"]\n"
        % (reg.host, reg.host, reg.host)))
    cri = Cri(d.socket)
    try:
        img = push_image(reg, "library/tworeg", "1", [busybox_layer()])
        a, b = "reg-a.test/library/tworeg:1", "reg-b.test/library/tworeg:1"
        assert pull(cri, a) == img.id
        assert pull(cri, b) == img.id
        assert sorted(listed(cri)[0].repo_tags) == [a, b]
        cri.call("RemoveImage", image=image_spec(a))
        assert not status(cri, b).HasField("image")
        assert listed(cri) == []
        assert store_empty(d.root) == []
    finally:
        cri.close()


def test_tag_moves_to_new_image(images, reg):
    _, cri = images
    a = push_image(reg, "library/mv", "x", [tar_bytes([("a", "file", "a", {})])])
    assert pull(cri, "mv:x") == a.id
    b = push_image(reg, "library/mv", "x", [tar_bytes([("b", "file", "b", {})])])
    assert pull(cri, "mv:x") == b.id
    assert status(cri, "mv:x").image.id == b.id
    assert list(status(cri, a.id).image.repo_tags) == []


@pytest.mark.parametrize("user,uid,name", [("1002", 1002, ""), ("www-data", None, "www-data"),
                                           ("1003:grp", 1003, ""), ("www-data:grp", None,
                                                                    "www-data"),
                                           ("", None, "")])
def test_uid_username_from_user(images, reg, user, uid, name):
    _, cri = images
    push_image(reg, "library/user", "t", [tar_bytes([("f", "file", user, {})])],
               config_extra={"User": user})
    pull(cri, "user:t")
    i = status(cri, "user:t").image
    if uid is None:
        assert not i.HasField("uid")
    else:
        assert i.uid.value == uid
    assert i.username == name


def test_pinned_pause_image(daemon_factory, reg):
    push_image(reg, "library/pause", "3.9", [tar_bytes([("pause", "file", "p", {})])])
    d = daemon_factory(config_text=registry_config(reg.host, "  pause_image: pause:3.9\n"))
    cri = Cri(d.socket)
    pull(cri, "pause:3.9")
    pull(cri, "busybox")
    pinned = {i.repo_tags[0]: i.pinned for i in listed(cri)}
    assert pinned == {"docker.io/library/pause:3.9": True,
                      "docker.io/library/busybox:latest": False}
    cri.close()
    assert d.stop() == 0


def test_list_filter(images, reg):
    _, cri = images
    pull(cri, "busybox")
    f = api_pb2.ImageFilter(image=image_spec("busybox"))
    assert [i.id for i in cri.call("ListImages", filter=f).images] == [reg.busybox.id]
    f = api_pb2.ImageFilter(image=image_spec("nothing"))
    assert list(cri.call("ListImages", filter=f).images) == []
    assert len(cri.call("ListImages", filter=api_pb2.ImageFilter()).images) == 1


def test_stream_images_matches_list(images, reg):
    _, cri = images
    assert list(cri.call("StreamImages")) == []  # an empty store: an empty stream
    pull(cri, "busybox")
    listed = list(cri.call("ListImages").images)
    streamed = [img for chunk in cri.call("StreamImages") for img in chunk.images]
    assert streamed == listed and len(listed) == 1
    f = api_pb2.ImageFilter(image=image_spec("nothing"))
    assert [c for c in cri.call("StreamImages", filter=f)] == []


def test_present_layer_not_downloaded_again(daemon_factory, reg, proxy):
    base = busybox_layer()
    a = push_image(reg, "library/la", "v1", [base, tar_bytes([("a", "file", "a", {})])])
    b = push_image(reg, "library/lb", "v1", [base, tar_bytes([("b", "file", "b", {})])])
    d = daemon_factory(config_text=registry_config(proxy.host))
    cri = Cri(d.socket)
    assert pull(cri, "la:v1") == a.id
    assert pull(cri, "lb:v1") == b.id
    assert proxy.blob_gets[a.layer_digests[0]] == 1  # shared base fetched once
    assert proxy.blob_gets[b.layer_digests[1]] == 1
    assert pull(cri, "la:v1") == a.id  # all present: no blob fetched again
    assert proxy.blob_gets[a.layer_digests[0]] == 1
    assert proxy.blob_gets[a.layer_digests[1]] == 1
    # removing one image keeps the shared layer for the other
    cri.call("RemoveImage", image=image_spec("la:v1"))
    dirs = json.loads(status(cri, "lb:v1", verbose=True).info["info"])["layerDirs"]
    assert all(os.path.isdir(x) for x in dirs)
    cri.close()
    assert d.stop() == 0


def test_crictl_pull_images_inspecti_rmi(images, reg):
    crictl = os.environ.get("CRICTL") or shutil.which("crictl")
    if not crictl:
        pytest.skip("crictl not installed")
    d, _ = images
    ep = ["--runtime-endpoint", "unix://" + d.socket, "--image-endpoint", "unix://" + d.socket]

    def run(*args):
        r = subprocess.run([crictl] + ep + list(args), capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    assert "Image is up to date for " + reg.busybox.id in run("pull", "busybox")
    out = run("images")
    assert "docker.io/library/busybox" in out and "latest" in out
    info = json.loads(run("inspecti", "busybox"))
    assert info["status"]["id"] == reg.busybox.id
    assert info["info"]["imageSpec"]["config"]["Cmd"] == ["/bin/sh"]
    run("rmi", reg.busybox.id[7:20])
    assert "busybox" not in run("images")


FS_IOC_GETFLAGS = 0x80086601
FS_TOPDIR_FL = 0x00020000


def fs_flags(path):
    import array
    import fcntl
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        return buf[0]
    finally:
        os.close(fd)


def test_layer_staging_dir_is_a_top_dir(images, reg, tmp_path):
    """layers/tmp/ gets FS_TOPDIR_FL (chattr +T) so ext4 spreads the layer
    trees unpacked in it over block groups instead of packing them into the
    groups of the store's parents (see fetch.c staging_spread())."""
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        fs_flags(str(probe))
        subprocess.run(["chattr", "+T", str(probe)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the filesystem under the test root has no inode flags")
    d, cri = images
    staging = os.path.join(d.root, "layers/tmp")
    assert not fs_flags(staging) & FS_TOPDIR_FL
    pull(cri, "busybox")
    assert fs_flags(staging) & FS_TOPDIR_FL
    # the layer dir renamed out of it is whole
    layer = json.loads(status(cri, "busybox", verbose=True).info["info"])["layerDirs"][0]
    assert os.access(os.path.join(layer, "bin/busybox"), os.X_OK)


def test_pull_syncs_once_before_the_record(images, reg, tmp_path):
    """A pull flushes with one syncfs() before its record's LMDB commit
    (fdatasync), not with an fsync per blob and per renamed layer."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace not installed")
    d, cri = images
    out = tmp_path / "strace.out"
    tracer = subprocess.Popen([strace, "-f", "-qq", "-e", "trace=fsync,fdatasync,syncfs",
                               "-o", str(out), "-p", str(d.proc.pid)],
                              stderr=subprocess.PIPE, text=True)
    try:
        # strace prints nothing on attach with -qq: wait until it traces
        # (TracerPid of the daemon)
        for _ in range(500):
            with open("/proc/%d/status" % d.proc.pid) as f:
                if any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in f):
                    break
            time.sleep(0.01)
        pull(cri, "busybox")
    finally:
        tracer.terminate()
        tracer.wait(timeout=30)
    calls = [l.split()[1].split("(")[0] for l in out.read_text().splitlines()
             if "(" in l and "resumed" not in l]
    assert "fsync" not in calls, calls
    assert "syncfs" in calls, calls
    assert "fdatasync" in calls, calls
    assert calls.index("syncfs") < calls.index("fdatasync"), calls
