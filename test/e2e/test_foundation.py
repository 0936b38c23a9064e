"""Foundation: the daemon serves CRI v1 on its socket; the runtime-info RPCs
answer for real; everything else answers UNIMPLEMENTED at once; bad config,
a second daemon and signals behave."""
import json
import os
import signal
import stat
import subprocess
import time

import grpc
import pytest

import api_pb2
from conftest import CRICKETD, METHODS, Cri, run_cricketd

BUILT = {"Version", "Status", "RuntimeConfig", "UpdateRuntimeConfig", "ImageFsInfo",
         "PullImage", "ListImages", "ImageStatus", "RemoveImage", "RunPodSandbox",
         "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus", "ListPodSandbox",
         "StreamImages", "StreamPodSandboxes", "Exec", "Attach", "PortForward",
         "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
         "ListContainers", "ContainerStatus", "ExecSync", "ReopenContainerLog",
         "UpdateContainerResources", "StreamContainers", "ContainerStats",
         "ListContainerStats", "StreamContainerStats", "PodSandboxStats", "ListPodSandboxStats",
         "StreamPodSandboxStats", "ListMetricDescriptors", "ListPodSandboxMetrics",
         "StreamPodSandboxMetrics", "UpdatePodSandboxResources"}
BUILT |= {"GetContainerEvents"}  # a long-lived stream: test_events.py
CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "cricket-test",
    "plugins": [{"type": "bridge", "bridge": "crkt0", "ipam": {"type": "host-local"}}],
}


def condition(resp, kind):
    found = [c for c in resp.status.conditions if c.type == kind]
    assert len(found) == 1, resp
    return found[0]


# ---- Version, Status, RuntimeConfig, UpdateRuntimeConfig ----

def test_version(cri):
    v = cri.call("Version", version="0.1.0")
    assert v.version == "0.1.0"
    assert v.runtime_name == "cricket"
    assert v.runtime_api_version == "v1"
    assert v.runtime_version and v.runtime_version[0].isdigit()


def test_status_network_ready_follows_cni_config(daemon, cri):
    s = cri.call("Status")
    assert condition(s, "RuntimeReady").status is True
    net = condition(s, "NetworkReady")
    assert net.status is False
    assert net.reason == "NetworkPluginNotReady"
    assert daemon.cni_dir in net.message

    # a file that is not a CNI config does not count
    with open(os.path.join(daemon.cni_dir, "00-broken.conflist"), "w") as f:
        f.write("{not json")
    assert condition(cri.call("Status"), "NetworkReady").status is False

    with open(os.path.join(daemon.cni_dir, "10-test.conflist"), "w") as f:
        json.dump(CONFLIST, f)
    net = condition(cri.call("Status"), "NetworkReady")
    assert net.status is True and net.reason == ""

    os.unlink(os.path.join(daemon.cni_dir, "10-test.conflist"))
    assert condition(cri.call("Status"), "NetworkReady").status is False


def test_status_verbose_info_shows_effective_config(daemon, cri):
    assert len(cri.call("Status").info) == 0
    info = cri.call("Status", verbose=True).info
    # crictl splices the values into one JSON document: each must be JSON
    values = {k: json.loads(v) for k, v in info.items()}
    assert values["config"]["root"] == daemon.root
    assert values["config"]["network"]["conf_dir"] == daemon.cni_dir
    assert values["config"]["runtime"]["cgroup_manager"] == "cgroupfs"
    assert values["podCIDR"] == ""


def test_runtime_config_cgroup_driver(cri):
    r = cri.call("RuntimeConfig")
    assert r.HasField("linux")
    assert r.linux.cgroup_driver == api_pb2.CGROUPFS


def test_runtime_config_systemd(daemon_factory):
    d = daemon_factory("runtime:\n  cgroup_manager: systemd\n")
    c = Cri(d.socket)
    try:
        r = c.call("RuntimeConfig")
        assert r.HasField("linux") and r.linux.cgroup_driver == api_pb2.SYSTEMD
    finally:
        c.close()
        assert d.stop() == 0


def test_update_runtime_config_stores_pod_cidr(cri):
    cfg = api_pb2.RuntimeConfig(network_config=api_pb2.NetworkConfig(pod_cidr="10.88.0.0/16"))
    cri.call("UpdateRuntimeConfig", runtime_config=cfg)
    assert json.loads(cri.call("Status", verbose=True).info["podCIDR"]) == "10.88.0.0/16"
    # empty CIDR is ignored, the stored one stays
    cri.call("UpdateRuntimeConfig", runtime_config=api_pb2.RuntimeConfig())
    cri.call("UpdateRuntimeConfig")
    assert json.loads(cri.call("Status", verbose=True).info["podCIDR"]) == "10.88.0.0/16"


@pytest.mark.parametrize("bad", ["10.88.0.0", "10.88.0.0/33", "nonsense/8", "fd00::/129"])
def test_update_runtime_config_rejects_bad_cidr(cri, bad):
    cfg = api_pb2.RuntimeConfig(network_config=api_pb2.NetworkConfig(pod_cidr=bad))
    with pytest.raises(grpc.RpcError) as e:
        cri.call("UpdateRuntimeConfig", runtime_config=cfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pod_cidr" in e.value.details()
    assert json.loads(cri.call("Status", verbose=True).info["podCIDR"]) == ""


# ---- ImageFsInfo ----

def usage(resp):
    img, ctr = resp.image_filesystems, resp.container_filesystems
    assert len(img) == 1 and len(ctr) == 1
    assert img[0].HasField("used_bytes") and ctr[0].HasField("used_bytes")
    assert img[0].timestamp > 1e18  # Unix nanoseconds
    return img[0], ctr[0]


def test_image_fs_info_counts_real_bytes_and_inodes(daemon, cri):
    img0, ctr0 = usage(cri.call("ImageFsInfo"))
    assert img0.fs_id.mountpoint == daemon.root
    assert ctr0.fs_id.mountpoint == daemon.root

    layer = os.path.join(daemon.root, "layers", "l1")
    os.makedirs(layer)
    with open(os.path.join(layer, "big"), "wb") as f:
        f.write(os.urandom(3 << 20))
    for i in range(10):
        open(os.path.join(layer, "f%d" % i), "w").close()
    upper = os.path.join(daemon.root, "containers", "c1")
    os.makedirs(upper)
    with open(os.path.join(upper, "data"), "wb") as f:
        f.write(os.urandom(1 << 20))

    img1, ctr1 = usage(cri.call("ImageFsInfo"))
    assert img1.used_bytes.value - img0.used_bytes.value >= 3 << 20
    assert img1.inodes_used.value - img0.inodes_used.value >= 12  # dirs + 11 files
    assert ctr1.used_bytes.value - ctr0.used_bytes.value >= 1 << 20
    # the two are counted apart
    assert img1.used_bytes.value - img0.used_bytes.value < 4 << 20


# ---- every method is there; unbuilt ones say so at once ----

def test_all_43_methods_are_in_the_contract():
    assert len(METHODS) == 43


@pytest.mark.parametrize("name", sorted(set(METHODS) - BUILT))
def test_unbuilt_method_answers_unimplemented(cri, name):
    svc, m = METHODS[name]
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        r = cri.call(name, timeout=10)
        if m.server_streaming:
            list(r)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value
    assert name in e.value.details()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("name", ["StreamImages", "StreamPodSandboxes", "StreamContainers",
                                  "StreamContainerStats", "StreamPodSandboxStats",
                                  "StreamPodSandboxMetrics"])
def test_stream_lists_answer_an_empty_stream(cri, name):
    # server-streaming replies: nothing to list is zero messages and OK
    assert list(cri.call(name, timeout=10)) == []


def test_unknown_method_answers_unimplemented_at_once(cri):
    for path in ["/runtime.v1.RuntimeService/NoSuchMethod", "/runtime.v1alpha2.RuntimeService/Version",
                 "/grpc.health.v1.Health/Check"]:
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            cri.raw(path, b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert path in e.value.details()
        assert time.monotonic() - start < 5


def test_malformed_request_is_invalid_argument(cri):
    with pytest.raises(grpc.RpcError) as e:
        cri.raw("/runtime.v1.RuntimeService/Version", b"\xff\xff\xff\xff\x0f", timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # and the daemon keeps serving
    assert cri.call("Version").runtime_name == "cricket"


def test_message_limit_is_16_mib(cri):
    # 5 MiB: over gRPC's 4 MiB default, under kubelet's 16 MiB: it arrives and
    # is judged on its content
    cfg = api_pb2.RuntimeConfig(network_config=api_pb2.NetworkConfig(pod_cidr="x" * (5 << 20)))
    with pytest.raises(grpc.RpcError) as e:
        cri.call("UpdateRuntimeConfig", runtime_config=cfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    cfg.network_config.pod_cidr = "x" * (17 << 20)
    with pytest.raises(grpc.RpcError) as e:
        cri.call("UpdateRuntimeConfig", runtime_config=cfg)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# ---- threading: a slow call never stalls fast ones ----

def test_slow_calls_do_not_stall_fast_ones(daemon_factory, tmpbase):
    gate = os.path.join(tmpbase, "gate")
    open(gate, "w").close()
    d = daemon_factory(env={"CRICKET_TEST_HOOK_SLOW": "PullImage:" + gate})
    c = Cri(d.socket)
    try:
        slow = [c.future("PullImage", timeout=120) for _ in range(6)]
        time.sleep(0.2)
        for _ in range(100):
            assert c.call("Version", timeout=10).runtime_name == "cricket"
        assert condition(c.call("Status", timeout=10), "RuntimeReady").status
        usage(c.call("ImageFsInfo", timeout=10))  # a pool method, beside the held ones
        assert not any(f.done() for f in slow), "slow calls ended while the gate was shut"
        os.unlink(gate)
        for f in slow:
            # released: each gets the handler's own answer (an empty
            # PullImage is refused), not a deadline
            with pytest.raises(grpc.RpcError) as e:
                f.result(timeout=60)
            assert e.value.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                          grpc.StatusCode.UNKNOWN)
    finally:
        c.close()
    assert d.stop() == 0


def test_slow_call_queue_is_bounded(daemon_factory, tmpbase):
    """Issue 10 item 4: with every worker busy and the queue full, a slow
    call gets RESOURCE_EXHAUSTED at once instead of growing the queue."""
    gate = os.path.join(tmpbase, "gate")
    open(gate, "w").close()
    d = daemon_factory(env={"CRICKET_TEST_HOOK_SLOW": "PullImage:" + gate,
                            "CRICKET_TEST_HOOK_POOL": "2:3"})
    c = Cri(d.socket)
    try:
        held = [c.future("PullImage", timeout=120) for _ in range(5)]  # 2 run, 3 wait
        time.sleep(0.5)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as e:
                c.call("PullImage", timeout=10)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "wait for a worker (limit 3)" in e.value.details()
        assert c.call("Version", timeout=10).runtime_name == "cricket"  # fast calls unaffected
        assert not any(f.done() for f in held)
        os.unlink(gate)
        for f in held:
            with pytest.raises(grpc.RpcError) as e:
                f.result(timeout=60)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # the handler's answer
        with pytest.raises(grpc.RpcError) as e:  # room again
            c.call("PullImage", timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        c.close()
    assert d.stop() == 0


def test_shipped_daemon_has_no_test_hooks(daemon_factory, tmpbase):
    """Issue 10 item 11: the production cricketd reads no test hook. With the
    gate shut, cricketd-test holds PullImage; cricketd answers at once."""
    from conftest import CRICKETD_TEST
    gate = os.path.join(tmpbase, "gate")
    open(gate, "w").close()
    hook = {"CRICKET_TEST_HOOK_SLOW": "PullImage:" + gate,
            "CRICKET_TEST_HOOK_STREAMING": "fake"}
    for binary, held in ((CRICKETD_TEST, True), (CRICKETD, False)):
        d = daemon_factory(env=hook, sub=os.path.basename(binary), start=False)
        assert d.binary == CRICKETD_TEST  # hooks pick the test build by default
        d.binary = binary
        d.start()
        c = Cri(d.socket)
        try:
            f = c.future("PullImage", timeout=60)
            time.sleep(1.0)
            assert f.done() != held, binary
            assert ("test hook" in d.logs()) == held, binary
        finally:
            c.close()
            assert d.stop() == 0
    with open(CRICKETD, "rb") as f:
        assert b"CRICKET_TEST_HOOK" not in f.read()


# ---- socket, lock, signals ----

def test_socket_mode_is_0660(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_second_daemon_is_refused(daemon, cri):
    second = run_cricketd(["--config", daemon.config])
    assert second.returncode == 1, second
    assert "another cricketd (pid %d)" % daemon.proc.pid in second.stderr
    assert cri.call("Version").runtime_name == "cricket"  # the first one still serves


def test_second_daemon_on_same_root_is_refused(daemon, cri, tmpbase):
    other = os.path.join(tmpbase, "other.sock")
    second = run_cricketd(["--config", daemon.config, "--listen", "unix://" + other])
    assert second.returncode == 1, second
    assert "root" in second.stderr and str(daemon.proc.pid) in second.stderr
    assert not os.path.exists(other)


def test_stale_socket_and_lock_are_taken_over(daemon_factory):
    d = daemon_factory()
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    assert os.path.exists(d.socket)  # left behind by the killed daemon
    d.start()
    c = Cri(d.socket)
    try:
        assert c.call("Version").runtime_name == "cricket"
    finally:
        c.close()
    assert d.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_cleanly(daemon_factory, sig):
    d = daemon_factory()
    assert d.stop(sig) == 0
    assert not os.path.exists(d.socket)
    assert "shutting down" in d.logs()


def test_shutdown_with_call_in_flight(daemon_factory, tmpbase):
    gate = os.path.join(tmpbase, "gate")
    open(gate, "w").close()
    d = daemon_factory(env={"CRICKET_TEST_HOOK_SLOW": "PullImage:" + gate})
    c = Cri(d.socket)
    try:
        f = c.future("PullImage", timeout=120)
        time.sleep(0.3)
        start = time.monotonic()
        assert d.stop(signal.SIGTERM) == 0
        assert time.monotonic() - start < 20
        with pytest.raises(grpc.RpcError) as e:
            f.result(timeout=30)
        # finished by the server (cancelled or answered), not left hanging
        assert e.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.CANCELLED,
                                  grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT)
    finally:
        c.close()
    assert not os.path.exists(d.socket)


def test_sigusr1_dumps_state(daemon):
    os.kill(daemon.proc.pid, signal.SIGUSR1)
    for _ in range(100):
        if "state: listen=" in daemon.logs():
            break
        time.sleep(0.05)
    assert "state: listen=unix://" + daemon.socket in daemon.logs()


# ---- command line and config ----

def test_version_and_help_flags():
    r = run_cricketd(["--version"])
    assert r.returncode == 0 and "cricketd version" in r.stdout
    r = run_cricketd(["--help"])
    assert r.returncode == 0 and "--runroot" in r.stdout and "config" in r.stdout
    r = run_cricketd(["--no-such-flag"])
    assert r.returncode == 2


def test_config_command_prints_effective_yaml(tmpbase):
    cfg = os.path.join(tmpbase, "c.yaml")
    with open(cfg, "w") as f:
        f.write("log_level: debug\nruntime:\n  cgroup_manager: systemd\n")
    os.makedirs(os.path.join(tmpbase, "cricket.d"))
    with open(os.path.join(tmpbase, "cricket.d", "10-a.yaml"), "w") as f:
        f.write("log_level: warn\n")
    r = run_cricketd(["--config", cfg, "--root", "/tmp/cricket-x", "config"])
    assert r.returncode == 0, r.stderr
    assert "log_level: warn" in r.stdout  # the drop-in wins over the main file
    assert "cgroup_manager: systemd" in r.stdout
    assert "root: /tmp/cricket-x" in r.stdout  # the flag wins over both
    # the output is itself a valid config
    out = os.path.join(tmpbase, "out.yaml")
    with open(out, "w") as f:
        f.write(r.stdout)
    r2 = run_cricketd(["--config", out, "config"])
    assert r2.returncode == 0 and r2.stdout == r.stdout



def test_config_command_fails_when_stdout_cannot_be_written():
    # a full disk must not look like an empty config printed with success
    with open("/dev/full", "w") as full:
        r = subprocess.run([CRICKETD, "config"], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=30)
    assert r.returncode == 1
    assert "cannot write the configuration" in r.stderr
    assert "No space left on device" in r.stderr

BAD_CONFIGS = [
    ("syntax", "log_level: [debug\n", 1, ""),
    ("unknown key", "runtime:\n  cgroup_mangler: systemd\n", 2, "runtime.cgroup_mangler"),
    ("wrong type", "network:\n  plugin_dirs: /opt/cni/bin\n", 2, "plugin_dirs"),
    ("bad value", "\nlog_level: loud\n", 2, "loud"),
    ("bad port", "streaming:\n  port: 70000\n", 2, "70000"),
    ("bad handler", "runtime:\n  default_handler: kata\n", 2, "kata"),
]


@pytest.mark.parametrize("what,text,line,word", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_exits_2_with_file_and_line(tmpbase, what, text, line, word):
    cfg = os.path.join(tmpbase, "bad.yaml")
    sock = os.path.join(tmpbase, "s.sock")
    with open(cfg, "w") as f:
        f.write("listen: unix://%s\nroot: %s/root\nrunroot: %s/run\n" % (sock, tmpbase, tmpbase))
        f.write(text)
    r = run_cricketd(["--config", cfg])
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "%s:%d:" % (cfg, line + 3) in r.stderr or (line == 1 and cfg + ":" in r.stderr), \
        r.stderr
    assert word in r.stderr
    # never half-started: no socket, no state
    assert not os.path.exists(sock)
    assert not os.path.exists(os.path.join(tmpbase, "root"))


def test_bad_dropin_names_its_file(tmpbase):
    cfg = os.path.join(tmpbase, "c.yaml")
    open(cfg, "w").close()
    os.makedirs(os.path.join(tmpbase, "cricket.d"))
    bad = os.path.join(tmpbase, "cricket.d", "20-bad.yaml")
    with open(bad, "w") as f:
        f.write("image:\n  pull_progress_timeout: soon\n")
    r = run_cricketd(["--config", cfg, "config"])
    assert r.returncode == 2
    assert bad + ":2:" in r.stderr


def test_missing_explicit_config_exits_2(tmpbase):
    r = run_cricketd(["--config", os.path.join(tmpbase, "nope.yaml")])
    assert r.returncode == 2 and "nope.yaml" in r.stderr


def test_bad_flag_value_exits_2(tmpbase):
    cfg = os.path.join(tmpbase, "c.yaml")
    open(cfg, "w").close()
    r = run_cricketd(["--config", cfg, "--log-level", "loud", "config"])
    assert r.returncode == 2 and "loud" in r.stderr
    r = run_cricketd(["--config", cfg, "--root", "relative/dir", "config"])
    assert r.returncode == 2 and "relative/dir" in r.stderr
