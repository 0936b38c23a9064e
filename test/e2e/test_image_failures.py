"""ImageService failures and concurrency against a real registry: auth
(basic, bearer, auth file), corrupted blobs, a registry dying mid-pull, no
progress, disk full, RemoveImage during a pull, kill -9 mid-pull,
concurrent pulls. Each test checks that nothing is left behind."""
import base64
import json
import os
import signal
import subprocess
import threading
import time

import grpc
import pytest

import api_pb2
from conftest import Cri, image_spec, listed, pull
from registry import (Proxy, Registry, busybox_layer, busybox_registry, make_tmp, push_image,
                      registry_config, rmtree, store_leftovers, tar_bytes, temp_registry,
                      tree_files)


def big_layer(mb, seed=b"x"):
    """A layer of incompressible data (urandom) so sizes are real."""
    return tar_bytes([("big-%s" % seed.decode(), "file", os.urandom(mb << 20), {})])


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-reg-") as r:
        r.big = push_image(r, "library/big", "v1", [busybox_layer(), big_layer(4, b"a"),
                                                    big_layer(4, b"b")])
        yield r


@pytest.fixture
def proxy(reg):
    p = Proxy(reg.port)
    yield p
    p.stop()


@pytest.fixture
def via_proxy(daemon_factory, proxy):
    d = daemon_factory(config_text=registry_config(proxy.host,
                                                   "  pull_progress_timeout: 3s\n"))
    c = Cri(d.socket)
    yield d, c, proxy
    c.close()
    assert d.stop() == 0, d.logs()


# ---- auth ----

@pytest.fixture(scope="module")
def auth_reg():
    def htpasswd(base):
        htp = os.path.join(base, "htpasswd")
        subprocess.run(["htpasswd", "-Bbc", htp, "alice", "s3cret"], check=True,
                       capture_output=True)
        return htp
    with temp_registry("cricket-authreg-", htpasswd=htpasswd) as r:
        r.img = push_image(r, "library/private", "v1", [busybox_layer()],
                           auth="alice:s3cret")
        yield r


def test_basic_auth(daemon_factory, auth_reg, tmpbase):
    authfile = os.path.join(tmpbase, "auth.json")
    with open(authfile, "w") as f:
        json.dump({"auths": {"docker.io": {
            "auth": base64.b64encode(b"alice:s3cret").decode()}}}, f)
    d = daemon_factory(config_text=registry_config(auth_reg.host,
                                                   "  auth_file: %s\n" % authfile))
    cri = Cri(d.socket)
    # anonymous is refused... unless the auth file has credentials: it does
    assert pull(cri, "private:v1") == auth_reg.img.id
    cri.call("RemoveImage", image=image_spec("private:v1"))
    # wrong password in the request overrides the file and fails with host + 401
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "private:v1", auth=api_pb2.AuthConfig(username="alice", password="nope"))
    assert auth_reg.host in e.value.details() and "401" in e.value.details(), e.value.details()
    assert listed(cri) == [] and store_leftovers(d.root, layers_tmp=False) == []
    # username/password and the base64 `auth` form both work
    assert pull(cri, "private:v1",
                auth=api_pb2.AuthConfig(username="alice", password="s3cret")) == auth_reg.img.id
    cri.call("RemoveImage", image=image_spec("private:v1"))
    tok = base64.b64encode(b"alice:s3cret").decode()
    assert pull(cri, "private:v1", auth=api_pb2.AuthConfig(auth=tok)) == auth_reg.img.id
    cri.close()
    assert d.stop() == 0


def test_basic_auth_required(daemon_factory, auth_reg):
    d = daemon_factory(config_text=registry_config(auth_reg.host))
    cri = Cri(d.socket)
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "private:v1")
    assert "401" in e.value.details() and auth_reg.host in e.value.details()
    cri.close()
    assert d.stop() == 0


def test_bearer_token_flow(daemon_factory, reg):
    p = Proxy(reg.port, bearer_users={"bob": "hunter2"})
    try:
        d = daemon_factory(config_text=registry_config(p.host))
        cri = Cri(d.socket)
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, "busybox", auth=api_pb2.AuthConfig(username="bob", password="bad"))
        assert "token server" in e.value.details() and "401" in e.value.details()
        good = api_pb2.AuthConfig(username="bob", password="hunter2")
        assert pull(cri, "busybox", auth=good) == reg.busybox.id
        first = p.token_requests
        assert pull(cri, "busybox", auth=good) == reg.busybox.id
        assert p.token_requests == first  # cached until expiry
        cri.close()
        assert d.stop() == 0
    finally:
        p.stop()


# ---- broken transfers ----

def test_corrupted_blob(via_proxy, reg):
    d, cri, proxy = via_proxy
    proxy.corrupt.add(reg.big.layer_digests[1])
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "big:v1")
    assert "digest mismatch" in e.value.details() and proxy.host in e.value.details()
    assert listed(cri) == []
    assert store_leftovers(d.root, layers_tmp=False) == []
    proxy.corrupt.clear()
    assert pull(cri, "big:v1") == reg.big.id


def test_corrupted_middle_layer_of_a_parallel_pull_leaves_nothing(via_proxy, reg):
    """The three layers are fetched and unpacked at once; the middle one's
    blob is corrupt: the pull names its digest mismatch, and nothing stays in
    blobs/, ingest/, layers/ or layers/tmp/ (the other layers' staging dirs
    and blobs included)."""
    d, cri, proxy = via_proxy
    bad = reg.big.layer_digests[1]
    proxy.corrupt.add(bad)
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "big:v1")
    assert "digest mismatch" in e.value.details() and bad in e.value.details()
    assert listed(cri) == []
    assert store_leftovers(d.root) == []


def test_diff_id_mismatch_leaves_nothing(via_proxy, reg):
    """A config whose diff id does not match what the (verified) blob
    unpacks to: the layer is refused after the unpack, naming both digests,
    and its staging dir and blob are gone."""
    d, cri, proxy = via_proxy
    raw = big_layer(1, b"d")
    wrong = "sha256:" + "0" * 64
    img = push_image(reg, "library/liar", "v1", [busybox_layer(), raw],
                     diff_ids_override=[reg.busybox.diff_ids[0], wrong])
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "liar:v1")
    msg = e.value.details()
    assert "diff id mismatch" in msg and wrong in msg and img.layer_digests[1] in msg, msg
    assert listed(cri) == []
    assert store_leftovers(d.root) == []


def test_registry_dies_mid_blob(via_proxy, reg):
    d, cri, proxy = via_proxy
    proxy.stall[reg.big.layer_digests[2]] = "abort"
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "big:v1")
    assert proxy.host in e.value.details()
    assert listed(cri) == [] and store_leftovers(d.root, layers_tmp=False) == []


def test_registry_killed_before_blobs(daemon_factory, tmpbase):
    base = make_tmp("cricket-reg-kill-")
    r = Registry(base)
    try:
        push_image(r, "library/k", "v1", [busybox_layer()])
        p = Proxy(r.port)
        d = daemon_factory(config_text=registry_config(p.host))
        cri = Cri(d.socket)
        r.stop()  # the registry process is gone: the proxy's upstream refuses
        with pytest.raises(grpc.RpcError):
            pull(cri, "k:v1")
        assert listed(cri) == [] and store_leftovers(d.root, layers_tmp=False) == []
        cri.close()
        assert d.stop() == 0
        p.stop()
    finally:
        r.stop()
        rmtree(base)


def test_no_progress_times_out(via_proxy, reg):
    d, cri, proxy = via_proxy
    proxy.stall[reg.big.layer_digests[1]] = 20
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "big:v1")
    assert time.monotonic() - t0 < 15
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
    assert proxy.host in e.value.details()
    assert listed(cri) == [] and store_leftovers(d.root, layers_tmp=False) == []


def test_disk_full(daemon_factory, reg):
    d = daemon_factory(config_text=registry_config(reg.host), start=False, sub="small")
    os.makedirs(d.root)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", d.root],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount tmpfs: %s" % r.stderr)
    try:
        d.start()
        cri = Cri(d.socket)
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, "big:v1")
        assert "No space left" in e.value.details(), e.value.details()
        assert listed(cri) == []
        assert store_leftovers(d.root, layers_tmp=False) == []
        assert tree_files(os.path.join(d.root, "layers/tmp")) == []
        # the daemon still works: a small image fits
        assert pull(cri, "busybox") == reg.busybox.id
        cri.close()
        assert d.stop() == 0
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        subprocess.run(["umount", d.root])


# ---- concurrency ----

def test_concurrent_pulls_share_downloads(via_proxy, reg):
    d, cri, proxy = via_proxy
    futs = [cri.future("PullImage", timeout=120, image=image_spec("big:v1")) for _ in range(4)]
    futs.append(cri.future("PullImage", timeout=120, image=image_spec("busybox")))
    ids = [f.result().image_ref for f in futs]
    assert ids == [reg.big.id] * 4 + [reg.busybox.id]
    for dg in reg.big.layer_digests:
        assert proxy.blob_gets.get(dg, 0) <= 1, proxy.blob_gets  # base may be shared
    assert sum(proxy.blob_gets.get(dg, 0) for dg in reg.big.layer_digests[1:]) == 2
    assert len(listed(cri)) == 2


def test_fast_calls_answer_during_pull(via_proxy, reg):
    d, cri, proxy = via_proxy
    proxy.stall[reg.big.layer_digests[1]] = 2
    fut = cri.future("PullImage", timeout=120, image=image_spec("big:v1"))
    assert proxy.stalled.wait(20)
    t0 = time.monotonic()
    for _ in range(10):
        cri.call("ListImages")
        cri.call("ImageStatus", image=image_spec("big:v1"))
    assert time.monotonic() - t0 < 1.5
    assert fut.result().image_ref == reg.big.id


def test_remove_while_pulling(via_proxy, reg):
    d, cri, proxy = via_proxy
    assert pull(cri, "busybox") == reg.busybox.id
    proxy.stall[reg.big.layer_digests[1]] = 2
    fut = cri.future("PullImage", timeout=120, image=image_spec("big:v1"))
    assert proxy.stalled.wait(20)
    cri.call("RemoveImage", image=image_spec("big:v1"))  # not there yet: fine
    cri.call("RemoveImage", image=image_spec("busybox"))  # GC waits for the pull
    assert fut.result().image_ref == reg.big.id
    items = listed(cri)
    assert [i.id for i in items] == [reg.big.id]
    # the pulled image is whole even though GC ran after a removal
    info = json.loads(cri.call("ImageStatus", image=image_spec("big:v1"),
                               verbose=True).info["info"])
    assert all(os.path.isdir(x) for x in info["layerDirs"])
    cri.call("RemoveImage", image=image_spec(reg.big.id))
    assert listed(cri) == [] and store_leftovers(d.root, layers_tmp=False) == []


def test_kill9_mid_pull(daemon_factory, reg, proxy):
    cfg = registry_config(proxy.host)
    d = daemon_factory(config_text=cfg)
    cri = Cri(d.socket)
    proxy.stall[reg.big.layer_digests[2]] = 5
    fut = cri.future("PullImage", timeout=120, image=image_spec("big:v1"))
    assert proxy.stalled.wait(20)
    time.sleep(0.5)  # other layers land in blobs/ and layers/
    d.proc.kill()
    d.proc.wait()
    with pytest.raises(grpc.RpcError):
        fut.result()
    cri.close()
    d.start()
    cri = Cri(d.socket)
    assert listed(cri) == []
    assert not cri.call("ImageStatus", image=image_spec("big:v1")).HasField("image")
    assert store_leftovers(d.root, layers_tmp=False) == []
    assert tree_files(os.path.join(d.root, "layers/tmp")) == []
    proxy.stall.clear()
    assert pull(cri, "big:v1") == reg.big.id
    cri.close()
    assert d.stop() == 0


def test_schema1_refused(via_proxy):
    d, cri, proxy = via_proxy
    body = json.dumps({"schemaVersion": 1, "name": "library/old", "tag": "v1",
                       "fsLayers": [], "history": []}).encode()
    proxy.manifest_override["/v2/library/old/manifests/v1"] = (
        body, "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "old:v1")
    assert "schema1" in e.value.details()
