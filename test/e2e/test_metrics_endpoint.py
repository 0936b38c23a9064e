"""The Prometheus endpoint (config section `metrics`) end to end: the real
daemon with a pod, containers, pulls and event subscribers, scraped over
HTTP and read back by a real parser of the text format (Debian's
python3-prometheus-client). Off by default; a bind that fails stops the
daemon with a clear error."""
import os
import re
import time
import urllib.error
import urllib.request

import grpc
import prometheus_client.parser as parser  # Debian python3-prometheus-client (contrib/dev.sh)
import pytest

import api_pb2
from registry import registry_config
from test_container import Pod, reg  # noqa: F401 (fixture)
from test_events import Sub, is_ev, CREATED
from test_sandbox import Env, envf, pytestmark  # noqa: F401 (fixture, skip mark)

METRICS_ON = "metrics:\n  enable: true\n  port: 0\n"


def metrics_url(env):
    m = re.search(r"metrics server on (http://\S+/metrics)", env.daemon.logs())
    assert m, env.daemon.logs()
    return m.group(1)


def scrape(env):
    with urllib.request.urlopen(metrics_url(env), timeout=10) as r:
        assert r.status == 200
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
        text = r.read().decode()
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def value(fams, family, sample=None, **labels):
    """The value of the one sample of `family` (named `sample`, default the
    family's own name) whose labels include `labels`; None if none."""
    name = sample or family
    hits = [s.value for s in fams[family].samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def tcp_listeners(pid):
    """Ports the process listens on over TCP (its socket fds matched with
    /proc/net/tcp{,6} entries in state LISTEN)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_off_by_default(envf):
    env = envf()
    assert "metrics server on" not in env.daemon.logs()
    # the streaming server is the daemon's only TCP listener
    assert len(tcp_listeners(env.daemon.proc.pid)) == 1


def test_metrics_on_listens_on_its_own_port(envf):
    env = envf(extra_config=METRICS_ON)
    port = int(metrics_url(env).rsplit(":", 1)[1].split("/")[0])
    assert metrics_url(env).startswith("http://127.0.0.1:")
    assert port in tcp_listeners(env.daemon.proc.pid)
    assert len(tcp_listeners(env.daemon.proc.pid)) == 2
    scrape(env)


def test_metrics_bad_bind_fails_clearly(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is no address of this host: the bind fails
    env = Env(str(tmp_path), extra_config="metrics:\n  enable: true\n  address: 192.0.2.1\n")
    env.daemon.start(wait=False)
    assert env.daemon.proc.wait(30) != 0
    logs = env.daemon.logs()
    assert "metrics server: listen on `192.0.2.1` port 9090" in logs, logs
    assert not os.path.exists(env.daemon.socket)
    env.net.destroy()


def test_metrics_endpoint_read_back_by_prometheus_parser(envf, reg):  # noqa: F811
    env = envf(extra_config=registry_config(reg.host) + METRICS_ON +
               "events:\n  queue_length: 4\n")
    p = Pod(env, reg)  # one good pull, one READY pod
    with pytest.raises(grpc.RpcError) as e:
        p.pull("nosuch:1")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value
    with pytest.raises(grpc.RpcError):
        p.status("0" * 64)
    sub = Sub(env.daemon.socket)
    running = p.run("r", command=["sleep", "600"])
    sub.until(is_ev(running, CREATED))
    res = api_pb2.LinuxContainerResources(memory_limit_in_bytes=16 << 20,
                                          memory_swap_limit_in_bytes=16 << 20)
    oom = p.run("oom", command=["sh", "-c", "x=a; while true; do x=$x$x; done"],
                linux=api_pb2.LinuxContainerConfig(resources=res))
    assert p.wait_exit(oom, timeout=60).reason == "OOMKilled"
    p.create("idle", command=["true"])

    # a subscriber that never reads, on a small window, lags past 4 events
    slow = Sub(env.daemon.socket, reader=False,
               options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)])
    for i in range(8):
        p.remove(p.create("x%d" % i, command=["true"]))

    f = scrape(env)
    # RPCs: operations by code, errors, latency histograms
    assert value(f, "cricket_rpc_requests", "cricket_rpc_requests_total",
                 method="RunPodSandbox", code="OK") == 1
    assert value(f, "cricket_rpc_requests", "cricket_rpc_requests_total",
                 method="ContainerStatus", code="NOT_FOUND") >= 1
    assert value(f, "cricket_rpc_errors", "cricket_rpc_errors_total", method="PullImage") == 1
    assert value(f, "cricket_rpc_errors", "cricket_rpc_errors_total", method="Version") == 0
    assert f["cricket_rpc_duration_seconds"].type == "histogram"
    assert value(f, "cricket_rpc_duration_seconds", "cricket_rpc_duration_seconds_count",
                 method="CreateContainer") >= 11
    assert value(f, "cricket_rpc_duration_seconds", "cricket_rpc_duration_seconds_bucket",
                 method="CreateContainer", le="+Inf") >= 11
    # pulls: success, failure by reason, bytes, duration
    assert value(f, "cricket_image_pulls", "cricket_image_pulls_total", result="success") == 1
    assert value(f, "cricket_image_pulls", "cricket_image_pulls_total",
                 result="failure", reason="not_found") == 1
    assert value(f, "cricket_image_pull_bytes", "cricket_image_pull_bytes_total") > 100000
    assert value(f, "cricket_image_pull_duration_seconds",
                 "cricket_image_pull_duration_seconds_count") == 2
    # objects by state, OOM kills, monitors
    assert value(f, "cricket_pods", state="ready") == 1
    assert value(f, "cricket_pods", state="notready") == 0
    assert value(f, "cricket_containers", state="running") == 1
    assert value(f, "cricket_containers", state="exited") == 1
    assert value(f, "cricket_containers", state="created") == 1
    assert value(f, "cricket_container_oom_kills", "cricket_container_oom_kills_total") == 1
    # running, created, the pod's infra: their monitors are alive (the
    # exited ones' monitors are gone)
    assert value(f, "cricket_monitors_expected") == 3
    # a monitor writes its exit file just before it exits: let the last ones go
    deadline = time.monotonic() + 20
    while value(f, "cricket_monitors_alive") != 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        f = scrape(env)
    assert value(f, "cricket_monitors_alive") == 3
    # event subscribers and drops
    assert value(f, "cricket_event_subscribers") == 2
    assert value(f, "cricket_events_dropped", "cricket_events_dropped_total") > 0
    assert value(f, "cricket_event_subscribers_ended",
                 "cricket_event_subscribers_ended_total") == 1
    # the daemon's own process
    assert value(f, "process_resident_memory_bytes") > 1 << 20
    assert value(f, "process_open_fds") > 3
    assert value(f, "process_cpu_seconds", "process_cpu_seconds_total") > 0
    assert value(f, "process_start_time_seconds") > 1.6e9

    # anything but /metrics is 404; POST is refused
    base = metrics_url(env)[:-len("/metrics")]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/nope", timeout=10)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(metrics_url(env), data=b"x"), timeout=10)
    assert e.value.code == 405
    slow.close()
    sub.close()
    for c in p.list():
        p.remove(c.id)
