"""Image pulls and security: the token cache never lends a token to other
credentials, credentials go only to the hosts they are for (mirrors, token
realms on other hosts), and pulls are bounded (deadline, per-layer caps).
Each test checks that a refused pull leaves nothing behind."""
import base64
import json
import os
import time

import grpc
import pytest

import api_pb2
from conftest import Cri
from registry import (Proxy, Registry, busybox_layer, make_tmp, push_image, registry_config,
                      rmtree, tar_bytes, tree_files)


def spec(ref):
    return api_pb2.ImageSpec(image=ref)


def pull(cri, ref, timeout=120, **kw):
    return cri.call("PullImage", timeout=timeout, image=spec(ref), **kw).image_ref


def listed(cri):
    return list(cri.call("ListImages").images)


def leftovers(root):
    return (tree_files(os.path.join(root, "blobs/sha256")) +
            tree_files(os.path.join(root, "blobs/ingest")) +
            tree_files(os.path.join(root, "layers/tmp")) +
            [f for f in tree_files(os.path.join(root, "layers")) if f != "tmp"])


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


@pytest.fixture(scope="module")
def reg():
    base = make_tmp("cricket-secreg-")
    r = Registry(base)
    try:
        r.busybox = push_image(r, "library/busybox", "latest", [busybox_layer()])
        yield r
    finally:
        r.stop()
        rmtree(base)


# ---- the token cache ----

def test_token_cache_keyed_by_credentials(daemon_factory, reg):
    """A token fetched with good credentials must not serve a later pull of
    the same repository with a wrong password or with no credentials."""
    p = Proxy(reg.port, bearer_users={"bob": "hunter2"})
    try:
        d = daemon_factory(config_text=registry_config(p.host))
        cri = Cri(d.socket)
        good = api_pb2.AuthConfig(username="bob", password="hunter2")
        assert pull(cri, "busybox", auth=good) == reg.busybox.id
        cri.call("RemoveImage", image=spec("busybox"))
        assert listed(cri) == []
        for bad in (api_pb2.AuthConfig(username="bob", password="wrong"), None):
            kw = {"auth": bad} if bad is not None else {}
            with pytest.raises(grpc.RpcError) as e:
                pull(cri, "busybox", **kw)
            assert "401" in e.value.details(), e.value.details()
            assert "token server" in e.value.details(), e.value.details()
            assert listed(cri) == [] and leftovers(d.root) == []
        # the good credentials still reuse their token
        first = p.token_requests
        assert pull(cri, "busybox", auth=good) == reg.busybox.id
        assert p.token_requests == first
        cri.close()
        assert d.stop() == 0
    finally:
        p.stop()
