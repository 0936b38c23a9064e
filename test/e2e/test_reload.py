"""SIGHUP (issue 16): cricketd reloads what can change while it serves (log
level, registries and mirrors, insecure registries, the auth file, the
default CNI network), logs every other changed key as needing a restart, and
keeps its running config when the new files are bad."""
import json
import os
import signal
import time

import grpc
import pytest

import api_pb2
from conftest import Cri
from registry import Registry, busybox_layer, make_tmp, push_image, registry_config, rmtree


def config_of(cri):
    return json.loads(cri.call("Status", verbose=True).info["config"])


def rewrite(d, extra, network=""):
    """The daemon's config file with its fixed part, `extra` and more keys
    of the network section."""
    with open(d.config, "w") as f:
        f.write("listen: unix://%s\nroot: %s\nrunroot: %s\nnetwork:\n  conf_dir: %s\n%s%s" %
                (d.socket, d.root, d.runroot, d.cni_dir, network, extra))


def hup_and_wait(d, text, timeout=10):
    """SIGHUP, then wait for `text` in the log (new lines only)."""
    seen = len(d.logs())
    os.kill(d.proc.pid, signal.SIGHUP)
    end = time.time() + timeout
    while time.time() < end:
        if text in d.logs()[seen:]:
            return d.logs()[seen:]
        time.sleep(0.05)
    raise AssertionError("no %r after SIGHUP:\n%s" % (text, d.logs()[seen:]))


def test_log_level_and_restart_only_keys(daemon_factory):
    d = daemon_factory(config_text="")
    rewrite(d, "log_level: info\n")
    hup_and_wait(d, "reload: `log_level` applied")
    c = Cri(d.socket)
    try:
        assert config_of(c)["log_level"] == "info"
        before = len(d.logs())
        c.call("Version", version="0.1.0")  # logged at debug only
        assert "rpc Version" not in d.logs()[before:]
        # a key that needs a restart: logged, not applied
        rewrite(d, "log_level: debug\nstreaming:\n  port: 1\n")
        out = hup_and_wait(d, "reload: `streaming.port` changed; it takes effect after a restart")
        assert "reload: `log_level` applied" in out
        assert config_of(c)["log_level"] == "debug"
        assert config_of(c)["streaming"]["port"] == 0
        before = len(d.logs())
        c.call("Version", version="0.1.0")
        assert "rpc Version" in d.logs()[before:]
        # the same files again: nothing to do
        hup_and_wait(d, "reload: `streaming.port` changed")
    finally:
        c.close()
    assert d.stop() == 0


def test_bad_config_keeps_the_running_one(daemon_factory):
    d = daemon_factory()
    with open(d.config, "a") as f:
        f.write("nonsense_key: 1\n")
    out = hup_and_wait(d, "the running config stays")
    assert "nonsense_key" in out
    c = Cri(d.socket)
    try:
        assert c.call("Version", version="0.1.0").runtime_name == "cricket"
        assert config_of(c)["log_level"] == "debug"
    finally:
        c.close()
    assert d.stop() == 0


@pytest.fixture(scope="module")
def reg():
    base = make_tmp("cricket-reload-reg-")
    r = Registry(base)
    try:
        push_image(r, "library/busybox", "latest", [busybox_layer()])
        yield r
    finally:
        r.stop()
        rmtree(base)


def test_registries_apply_to_the_next_pull(daemon_factory, reg):
    # docker.io points at a port nothing listens on: the pull fails
    d = daemon_factory(config_text=registry_config("127.0.0.1:1"))
    c = Cri(d.socket)
    try:
        with pytest.raises(grpc.RpcError):
            c.call("PullImage", timeout=60, image=api_pb2.ImageSpec(image="busybox"))
        rewrite(d, registry_config(reg.host))
        out = hup_and_wait(d, "reload: `image.registries` applied")
        assert "reload: `image.insecure_registries` applied" in out
        ref = c.call("PullImage", timeout=60, image=api_pb2.ImageSpec(image="busybox")).image_ref
        assert ref.startswith("sha256:")
        assert config_of(c)["image"]["registries"]["docker.io"]["location"] == reg.host
    finally:
        c.close()
    assert d.stop() == 0


def write_net(d, name, bridge):
    conf = {"cniVersion": "1.0.0", "name": name,
            "plugins": [{"type": "bridge", "bridge": bridge, "ipam": {"type": "host-local"}}]}
    path = os.path.join(d.cni_dir, "%s.conflist" % name)
    with open(path, "w") as f:
        json.dump(conf, f)
    return path


def test_default_network_follows_the_config(daemon_factory):
    d = daemon_factory()
    a = write_net(d, "a-net", "crktra0")
    b = write_net(d, "b-net", "crktrb0")
    c = Cri(d.socket)
    try:
        assert json.loads(c.call("Status", verbose=True).info["cniConfig"]) == a
        rewrite(d, "", network="  default_network: b-net\n")
        hup_and_wait(d, "reload: `network.default_network` applied")
        assert json.loads(c.call("Status", verbose=True).info["cniConfig"]) == b
    finally:
        c.close()
    assert d.stop() == 0
