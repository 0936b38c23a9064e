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
from conftest import Cri, image_spec, listed, pull
from registry import (Proxy, busybox_layer, busybox_registry, push_image, registry_config,
                      store_leftovers, tar_bytes, temp_registry)


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-secreg-") as r:
        yield r

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
        cri.call("RemoveImage", image=image_spec("busybox"))
        assert listed(cri) == []
        for bad in (api_pb2.AuthConfig(username="bob", password="wrong"), None):
            kw = {"auth": bad} if bad is not None else {}
            with pytest.raises(grpc.RpcError) as e:
                pull(cri, "busybox", **kw)
            assert "401" in e.value.details(), e.value.details()
            assert "token server" in e.value.details(), e.value.details()
            assert listed(cri) == [] and store_leftovers(d.root) == []
        # the good credentials still reuse their token
        first = p.token_requests
        assert pull(cri, "busybox", auth=good) == reg.busybox.id
        assert p.token_requests == first
        cri.close()
        assert d.stop() == 0
    finally:
        p.stop()


# ---- credentials go only where they belong ----

def mirror_config(location, mirror, extra=""):
    return ("image:\n  registries:\n    docker.io:\n      location: %s\n"
            "      mirrors: [%s]\n  insecure_registries: [\"%s\", \"%s\"]\n%s"
            % (location, mirror, location, mirror, extra))


def test_request_credentials_not_sent_to_mirror(daemon_factory, reg):
    """AuthConfig is for the image's registry: a mirror that asks for basic
    credentials gets none (the pull falls back to the location, which does)."""
    mirror = Proxy(reg.port, basic_users={"mirroruser": "mirrorpw"})
    loc = Proxy(reg.port, basic_users={"alice": "s3cret"})
    try:
        d = daemon_factory(config_text=mirror_config(loc.host, mirror.host))
        cri = Cri(d.socket)
        alice = api_pb2.AuthConfig(username="alice", password="s3cret")
        assert pull(cri, "busybox", auth=alice) == reg.busybox.id
        assert mirror.auth_headers() == []
        assert basic("alice", "s3cret") in loc.auth_headers()
        cri.call("RemoveImage", image=image_spec("busybox"))
        # a registry token is sent before any challenge: not to the mirror either
        with pytest.raises(grpc.RpcError):
            pull(cri, "busybox", auth=api_pb2.AuthConfig(registry_token="tok-for-loc"))
        assert mirror.auth_headers() == []
        assert "Bearer tok-for-loc" in loc.auth_headers()
        assert listed(cri) == [] and store_leftovers(d.root) == []
        cri.close()
        assert d.stop() == 0
    finally:
        mirror.stop()
        loc.stop()


def test_auth_file_entry_of_mirror_host_only(daemon_factory, reg, tmpbase):
    """A mirror gets the auth file entry of its own host, never the one of
    the image's registry."""
    mirror = Proxy(reg.port, basic_users={"mirroruser": "mirrorpw"})
    loc = Proxy(reg.port, basic_users={"alice": "s3cret"})
    try:
        authfile = os.path.join(tmpbase, "auth.json")
        with open(authfile, "w") as f:
            json.dump({"auths": {
                "docker.io": {"auth": base64.b64encode(b"alice:s3cret").decode()},
                mirror.host: {"username": "mirroruser", "password": "mirrorpw"}}}, f)
        d = daemon_factory(config_text=mirror_config(loc.host, mirror.host,
                                                     "  auth_file: %s\n" % authfile))
        cri = Cri(d.socket)
        assert pull(cri, "busybox") == reg.busybox.id
        assert set(mirror.auth_headers()) == {basic("mirroruser", "mirrorpw")}
        assert loc.seen_auth == []  # the mirror served it all
        cri.close()
        assert d.stop() == 0
    finally:
        mirror.stop()
        loc.stop()


@pytest.fixture
def realm_elsewhere(reg):
    """A registry whose token realm is a plain-http server on another host
    (127.0.0.2), which records the Authorization headers it receives."""
    token = Proxy(None, bearer_users={"bob": "hunter2"}, bind="127.0.0.2")
    p = Proxy(reg.port, bearer_users={"bob": "hunter2"}, token_server=token)
    yield p, token
    p.stop()
    token.stop()


def test_plain_http_realm_gets_no_credentials(daemon_factory, reg, realm_elsewhere):
    p, token = realm_elsewhere
    d = daemon_factory(config_text=registry_config(p.host))
    cri = Cri(d.socket)
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "busybox", auth=api_pb2.AuthConfig(username="bob", password="hunter2"))
    msg = e.value.details()
    assert "401" in msg and "insecure_registries" in msg and token.host in msg, msg
    assert token.token_requests >= 1 and token.auth_headers() == []
    assert listed(cri) == [] and store_leftovers(d.root) == []
    cri.close()
    assert d.stop() == 0


def test_insecure_listed_realm_gets_credentials(daemon_factory, reg, realm_elsewhere):
    p, token = realm_elsewhere
    d = daemon_factory(config_text=(
        "image:\n  registries:\n    docker.io:\n      location: %s\n"
        "  insecure_registries: [\"%s\", \"%s\"]\n" % (p.host, p.host, token.host)))
    cri = Cri(d.socket)
    assert pull(cri, "busybox",
                auth=api_pb2.AuthConfig(username="bob", password="hunter2")) == reg.busybox.id
    assert basic("bob", "hunter2") in token.auth_headers()
    cri.close()
    assert d.stop() == 0


# ---- pulls are bounded ----

def files_layer(n, size=1, name="f"):
    return tar_bytes([("%s%04d" % (name, i), "file", os.urandom(size), {}) for i in range(n)])


@pytest.fixture(scope="module")
def bounded_reg():
    with temp_registry("cricket-boundreg-") as r:
        r.slow = push_image(r, "library/slow", "v1", [busybox_layer(),
                                                      files_layer(1, 2 << 20, "big")])
        r.many = push_image(r, "library/many", "v1", [files_layer(50)])
        r.fat = push_image(r, "library/fat", "v1", [files_layer(1, 1 << 20)])
        r.small = push_image(r, "library/small", "v1", [files_layer(5, 100)])
        yield r


def wait_pull_logged(d, timeout=60):
    """The daemon's last word on the PullImage call: its error (code=) or,
    at trace level, its completion (took_us=)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in d.logs().splitlines():
            if "rpc=PullImage code=" in line or "rpc=PullImage took_us=" in line:
                return line
        time.sleep(0.1)
    raise AssertionError("PullImage never ended:\n" + d.logs()[-3000:])


def test_client_deadline_ends_pull(daemon_factory, bounded_reg):
    """A pull slower than the client's deadline stops at it: the daemon ends
    it with DEADLINE_EXCEEDED and keeps nothing of it."""
    p = Proxy(bounded_reg.port)
    try:
        p.stall[bounded_reg.slow.layer_digests[1]] = 8  # slow, but never idle for 1m
        d = daemon_factory(config_text=registry_config(p.host),
                           extra_args=("--log-level", "trace"))
        cri = Cri(d.socket)
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, "slow:v1", timeout=2)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        line = wait_pull_logged(d)
        assert "code=4" in line and "deadline exceeded" in line, line
        assert "the client's deadline" in line, line
        assert listed(cri) == [] and store_leftovers(d.root) == []
        cri.close()
        assert d.stop() == 0
    finally:
        p.stop()


def test_pull_timeout_config(daemon_factory, bounded_reg):
    p = Proxy(bounded_reg.port)
    try:
        p.stall[bounded_reg.slow.layer_digests[1]] = 8
        d = daemon_factory(config_text=registry_config(p.host, "  pull_timeout: 2s\n"))
        cri = Cri(d.socket)
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, "slow:v1", timeout=60)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
        assert "image.pull_timeout" in e.value.details(), e.value.details()
        assert listed(cri) == [] and store_leftovers(d.root) == []
        # without the stall the same pull fits
        p.stall.clear()
        assert pull(cri, "slow:v1") == bounded_reg.slow.id
        cri.close()
        assert d.stop() == 0
    finally:
        p.stop()


def test_layer_caps(daemon_factory, bounded_reg):
    d = daemon_factory(config_text=registry_config(
        bounded_reg.host, "  max_layer_entries: 20\n  max_layer_unpacked_bytes: 256Ki\n"))
    cri = Cri(d.socket)
    for ref, img, key in (("many:v1", bounded_reg.many, "image.max_layer_entries"),
                          ("fat:v1", bounded_reg.fat, "image.max_layer_unpacked_bytes")):
        with pytest.raises(grpc.RpcError) as e:
            pull(cri, ref)
        msg = e.value.details()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert img.layer_digests[0] in msg and key in msg, msg
        assert ("20" if "entries" in key else "262144") in msg, msg
        assert listed(cri) == [] and store_leftovers(d.root) == []
    assert pull(cri, "small:v1") == bounded_reg.small.id  # within both caps
    cri.close()
    assert d.stop() == 0
