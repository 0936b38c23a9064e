"""Issue 12: a real kubelet (standalone, static pods) drives cricketd.

One node (registry + cricketd + kubelet, see kubenode.py) serves the module;
every scenario writes its own manifests, asserts on what kubelet reports on
its /pods endpoint and on files (logs, HTTP answers), and removes its pods
when done, failed or not."""
import json
import os
import random
import re
import time
import urllib.request

import pytest

import kubenode

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)) "
                      r"(stdout|stderr) ([FP]) (.*)$")

ok, why = kubenode.prereqs()
pytestmark = pytest.mark.skipif(not ok, reason=why)


@pytest.fixture(scope="module")
def node():
    yield from kubenode.module_node()


@pytest.fixture
def pods(node):
    """add(name, spec) a static pod; removed after the test whatever happened."""
    added = []

    def add(name, spec):
        name = "%s-%04x" % (name, random.getrandbits(16))
        added.append(name)
        node.add_pod(name, spec)
        return name

    yield add
    for name in added:
        node.remove_pod(name)
    for name in added:
        node.wait_stopped(name)


def container(p, name, init=False):
    key = "initContainerStatuses" if init else "containerStatuses"
    for c in p["status"].get(key) or []:
        if c["name"] == name:
            return c
    return None


def running_ready(p):
    cs = p["status"].get("containerStatuses") or []
    conds = {c["type"]: c["status"] for c in p["status"].get("conditions") or []}
    return (p["status"].get("phase") == "Running" and conds.get("Ready") == "True" and cs and
            all(c.get("ready") and "running" in c.get("state", {}) for c in cs))


def read_log(path):
    """kubelet's CRI log format: (stream, "F", text) per full line; asserts the format."""
    with open(path) as f:
        lines = f.read().splitlines()
    out, partial = [], {}
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, "not in kubelet's log format: %r (%s)" % (line, path)
        # P: a fragment (the monitor's read ended mid-line), joined up to the F
        stream = m.group(4)
        partial[stream] = partial.get(stream, "") + m.group(6)
        if m.group(5) == "F":
            out.append((stream, "F", partial.pop(stream)))
    return out


def wait_log(path, want, timeout=60):
    """Polls until the log holds WANT (full lines, stdout, in order)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        if os.path.exists(path):
            got = read_log(path)
            texts = [t for s, tag, t in got if s == "stdout" and tag == "F"]
            if texts[:len(want)] == want:
                return got
        time.sleep(0.5)
    raise AssertionError("log %s: wanted %r, got %r" % (path, want, got))


def sleeper(cmd):
    """A shell command that then stays up (exec: the container's PID 1 sleeps)."""
    return ["sh", "-c", cmd + "; exec sleep 3600"]


# (1) two containers, an emptyDir, env and args; Running/Ready; kubelet-format logs
def test_two_containers_emptydir_env_args_logs(node, pods):
    word = "hello-%06x" % random.getrandbits(24)
    name = pods("shared", {
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [
            {"name": "writer",
             "command": ["sh", "-c",
                         'echo "args: $1|$2"; echo "env: $GREETING"; '
                         'echo "$GREETING" > /scratch/msg; exec sleep 3600', "sh"],
             "args": ["arg-one", "arg two"],
             "env": [{"name": "GREETING", "value": word}],
             "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
            {"name": "reader",
             "command": sleeper('while [ ! -s /data/msg ]; do sleep 0.2; done; '
                                'echo "read: $(cat /data/msg)"'),
             "volumeMounts": [{"name": "scratch", "mountPath": "/data"}]},
        ]})
    p = node.wait_pod(name, running_ready, "Running and Ready")
    assert p["status"].get("podIP", "").startswith(node.net.subnet_prefix + "."), p["status"]
    for c in ("writer", "reader"):
        st = container(p, c)
        assert st["restartCount"] == 0, st
        assert "://" in st["containerID"], st
    d = node.log_dir(p)
    wait_log(os.path.join(d, "writer", "0.log"), ["args: arg-one|arg two", "env: " + word])
    wait_log(os.path.join(d, "reader", "0.log"), ["read: " + word])
    # kubelet's own symlinks name the same files
    links = [n for n in os.listdir(kubenode.CONTAINER_LOGS) if n.startswith(p["metadata"]["name"])]
    assert len(links) == 2, links


# (8) manifest removed: kubelet stops and removes the pod; nothing left behind
def test_manifest_removed_pod_removed_nothing_left(node, pods):
    before = node.resources()
    name = pods("gone", {"containers": [{"name": "c", "command": sleeper("echo up")}]})
    p = node.wait_pod(name, running_ready, "Running and Ready")
    during = node.resources()
    assert during["netns pins"] - before["netns pins"], during
    assert during["leases"] - before["leases"], during
    assert during["monitors"] - before["monitors"], during
    node.remove_pod(name)
    node.wait_gone(name)
    after = node.resources()
    leaks = {k: sorted(after[k] - before[k]) for k in after if after[k] - before[k]}
    assert not leaks, "left behind after removal of %s: %r\n%s" % (
        p["metadata"]["uid"], leaks, node.diagnostics())


# (4) exit 1 -> CrashLoopBackOff, exit code and reason as kubelet reports them
def test_exit_1_crashloopbackoff(node, pods):
    name = pods("crash", {"containers": [{"name": "c", "command": ["sh", "-c",
                                                                   "echo dying; exit 1"]}]})

    def backing_off(p):
        st = container(p, "c")
        if not st:
            return False
        waiting = st.get("state", {}).get("waiting", {})
        last = st.get("lastState", {}).get("terminated")
        return waiting.get("reason") == "CrashLoopBackOff" and last is not None

    p = node.wait_pod(name, backing_off, "CrashLoopBackOff", timeout=120)
    st = container(p, "c")
    last = st["lastState"]["terminated"]
    assert last["exitCode"] == 1, st
    assert last["reason"] == "Error", st
    assert st["ready"] is False, st
    assert p["status"]["phase"] == "Running", p["status"]
    logs = os.path.join(node.log_dir(p), "c")
    n = st["restartCount"]
    wait_log(os.path.join(logs, "%d.log" % n), ["dying"])


# (7) hostNetwork pod; hostPort pod reachable on 127.0.0.1:<hostPort>
def test_host_network(node, pods):
    name = pods("hostnet", {"hostNetwork": True, "containers": [
        {"name": "c", "command": sleeper("cat /proc/net/dev")}]})
    p = node.wait_pod(name, running_ready, "Running and Ready")
    assert not p["status"].get("podIP", "").startswith(node.net.subnet_prefix + "."), p["status"]
    # the host's interfaces, this test's bridge among them, are the pod's
    log = os.path.join(node.log_dir(p), "c", "0.log")
    deadline = time.monotonic() + 30
    texts = []
    while time.monotonic() < deadline:
        if os.path.exists(log):
            texts = [t for _, _, t in read_log(log)]
            if any(t.strip().startswith(node.net.name + ":") for t in texts):
                break
        time.sleep(0.5)
    assert any(t.strip().startswith(node.net.name + ":") for t in texts), texts


def test_host_port(node, pods):
    port = kubenode.registry.free_port()
    word = "served-%06x" % random.getrandbits(24)
    name = pods("hostport", {"containers": [
        {"name": "web",
         "command": ["sh", "-c", "mkdir -p /www && echo %s > /www/index.html && "
                     "exec httpd -f -p 8080 -h /www" % word],
         "ports": [{"containerPort": 8080, "hostPort": port, "protocol": "TCP"}]}]})
    node.wait_pod(name, running_ready, "Running and Ready")
    deadline = time.monotonic() + 30
    body, err = None, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port,
                                        timeout=5) as r:
                body = r.read().decode()
                break
        except OSError as e:
            err = e
            time.sleep(0.5)
    assert body == word + "\n", (body, err, node.diagnostics())


# (2) init containers in order; a sidecar (restartPolicy Always) keeps running
def test_init_containers_and_sidecar(node, pods):
    name = pods("init", {
        "volumes": [{"name": "work", "emptyDir": {}}],
        "initContainers": [
            {"name": "first", "command": ["sh", "-c", "echo one >> /work/order"],
             "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
            {"name": "second", "command": ["sh", "-c", "echo two >> /work/order"],
             "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
            {"name": "side", "restartPolicy": "Always",
             "command": sleeper("echo side >> /work/order; touch /work/side"),
             "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
        ],
        "containers": [
            {"name": "main",
             "command": sleeper("while [ ! -f /work/side ]; do sleep 0.2; done; "
                                "cat /work/order"),
             "volumeMounts": [{"name": "work", "mountPath": "/work"}]}]})
    p = node.wait_pod(name, running_ready, "Running and Ready")
    for c in ("first", "second"):
        st = container(p, c, init=True)
        term = st["state"].get("terminated")
        assert term and term["exitCode"] == 0 and term["reason"] == "Completed", st
    first = container(p, "first", init=True)["state"]["terminated"]
    second = container(p, "second", init=True)["state"]["terminated"]
    assert first["finishedAt"] <= second["startedAt"], (first, second)
    wait_log(os.path.join(node.log_dir(p), "main", "0.log"), ["one", "two", "side"])
    # the sidecar is still up (not restarted) while main runs
    time.sleep(3)
    p = node.pod(name)
    side = container(p, "side", init=True)
    assert "running" in side["state"], side
    assert side["restartCount"] == 0, side
    assert side.get("started") is True, side
    assert running_ready(p), json.dumps(p["status"])


# (5) memory limit 16Mi and a hog -> OOMKilled; CPU limit visible in the container's cgroup
def test_memory_limit_oomkilled(node, pods):
    name = pods("hog", {"containers": [
        {"name": "hog",
         "command": ["sh", "-c", 'echo start; x=0123456789abcdef; while true; do x="$x$x"; done'],
         "resources": {"limits": {"memory": "16Mi", "cpu": "500m"}}}]})

    def oom_killed(p):
        st = container(p, "hog")
        if not st:
            return False
        for k in ("state", "lastState"):
            t = st.get(k, {}).get("terminated")
            if t and t.get("reason") == "OOMKilled":
                return True
        return False

    p = node.wait_pod(name, oom_killed, "OOMKilled", timeout=120)
    st = container(p, "hog")
    t = st["state"].get("terminated") or st["lastState"]["terminated"]
    assert t["exitCode"] == 137, st
    assert p["status"]["qosClass"] == "Guaranteed", p["status"]


def test_cpu_limit_in_cgroup(node, pods):
    name = pods("cpu", {"containers": [
        {"name": "c",
         "command": sleeper("cat /sys/fs/cgroup/cpu/cpu.cfs_period_us "
                            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                            "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
         "resources": {"limits": {"cpu": "250m", "memory": "32Mi"}}}]})
    p = node.wait_pod(name, running_ready, "Running and Ready")
    wait_log(os.path.join(node.log_dir(p), "c", "0.log"),
             ["100000", "25000", str(32 << 20)])


# (3) failing exec liveness -> restart, previous log kept; httpGet readiness; tcpSocket probes
def test_exec_liveness_restart_keeps_previous_log(node, pods):
    name = pods("live", {
        "volumes": [{"name": "state", "emptyDir": {}}],
        "containers": [
            {"name": "c",
             "command": sleeper("touch /tmp/alive; if [ -f /state/booted ]; then echo second; "
                                "else touch /state/booted; echo first; sleep 2; rm /tmp/alive; fi"),
             "volumeMounts": [{"name": "state", "mountPath": "/state"}],
             "livenessProbe": {"exec": {"command": ["cat", "/tmp/alive"]},
                               "periodSeconds": 1, "failureThreshold": 1}}]})

    def restarted(p):
        st = container(p, "c")
        return st and st["restartCount"] >= 1 and "running" in st["state"]

    p = node.wait_pod(name, restarted, "restarted by its liveness probe")
    st = container(p, "c")
    assert st["restartCount"] == 1, st
    assert st["lastState"]["terminated"]["exitCode"] == 137, st
    d = os.path.join(node.log_dir(p), "c")
    wait_log(os.path.join(d, "1.log"), ["second"])
    wait_log(os.path.join(d, "0.log"), ["first"])


def test_http_readiness_and_tcp_probes(node, pods):
    name = pods("ready", {"containers": [
        {"name": "web",
         "command": sleeper("mkdir -p /www && httpd -p 8080 -h /www && sleep 4 && "
                            "echo ok > /www/ready"),
         "ports": [{"containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
         "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1,
                           "failureThreshold": 2, "initialDelaySeconds": 1}},
        {"name": "closed", "command": sleeper("true"),
         "readinessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1}}]})

    def web(p):
        return container(p, "web") or {}

    # running but not yet ready: the readiness file is not served yet
    node.wait_pod(name, lambda p: "running" in web(p).get("state", {}) and
                  web(p).get("ready") is False, "web running, not ready", timeout=60)
    p = node.wait_pod(name, lambda p: web(p).get("ready") is True, "web ready", timeout=60)
    time.sleep(3)  # a few tcpSocket liveness periods
    p = node.pod(name)
    assert web(p)["ready"] is True and web(p)["restartCount"] == 0, web(p)
    closed = container(p, "closed")
    assert "running" in closed["state"] and closed["ready"] is False, closed
    assert p["status"]["podIP"].startswith(node.net.subnet_prefix + "."), p["status"]


def snapshot(node, names):
    """{pod: (sandbox ids, {container: (id, restartCount)})} as kubelet and cricket see them."""
    out = {}
    for n in names:
        p = node.pod(n)
        ctrs = {c["name"]: (c["containerID"], c["restartCount"])
                for c in p["status"].get("containerStatuses") or []}
        out[n] = (sorted(s.id for s in node.sandboxes(n)), ctrs)
    return out


def settle_and_compare(node, names, before, what):
    """Several kubelet syncs (3 s) and relists later, nothing was recreated."""
    for n in names:
        node.wait_pod(n, running_ready, "Running and Ready after " + what, timeout=60)
    time.sleep(10)
    after = snapshot(node, names)
    changed = {n: (before[n], after[n]) for n in names if before[n] != after[n]}
    assert not changed, "recreated after %s: %r\n%s" % (what, changed, node.diagnostics())


# (10) kubelet restarted: its pods adopted, not recreated
def test_kubelet_restart_adopts_pods(node, pods):
    names = [pods("adopt", {"containers": [{"name": "a", "command": sleeper("echo a")},
                                           {"name": "b", "command": sleeper("echo b")}]})]
    for n in names:
        node.wait_pod(n, running_ready, "Running and Ready")
    before = snapshot(node, names)
    assert all(len(before[n][0]) == 1 and len(before[n][1]) == 2 for n in names), before
    node.restart_kubelet()
    settle_and_compare(node, names, before, "a kubelet restart")


# (9) kill -9 of cricketd with 10 static pods, restart: kubelet recreates nothing
def test_cricketd_killed_with_10_pods_nothing_recreated(node, pods):
    names = [pods("ten%d" % i, {"containers": [{"name": "c", "command": sleeper("echo up")}]})
             for i in range(10)]
    for n in names:
        node.wait_pod(n, running_ready, "Running and Ready", timeout=180)
    before = snapshot(node, names)
    assert all(len(before[n][0]) == 1 for n in names), before
    node.kill_restart_cricketd()
    settle_and_compare(node, names, before, "kill -9 and restart of cricketd")


# (6) kubelet log rotation of a chatty container: ReopenContainerLog, no line lost
def test_log_rotation_no_line_lost(node, pods):
    import gzip
    total = 30000
    pad = "x" * 80
    name = pods("chatty", {"containers": [
        {"name": "c",
         "command": sleeper("i=0; while [ $i -lt %d ]; do echo \"seq $i %s\"; i=$((i+1)); "
                            "if [ $((i %% 300)) = 0 ]; then sleep 0.2; fi; done; echo done"
                            % (total, pad))}]})
    p = node.wait_pod(name, running_ready, "Running and Ready")
    d = os.path.join(node.log_dir(p), "c")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        cur = os.path.join(d, "0.log")
        if os.path.exists(cur) and any(t == "done" for _, _, t in read_log(cur)):
            break
        time.sleep(1)
    files = sorted(f for f in os.listdir(d) if f != "0.log")
    assert files, "no rotation: %r" % os.listdir(d)
    assert len(files) <= 2, files  # containerLogMaxFiles 3, the live one included
    seqs, partial = [], ""
    for f in files + ["0.log"]:
        path = os.path.join(d, f)
        opener = gzip.open if f.endswith(".gz") else open
        with opener(path, "rt") as fh:
            for line in fh.read().splitlines():
                m = LOG_LINE.match(line)
                assert m, "not in kubelet's log format: %r (%s)" % (line, f)
                # P: a fragment (the monitor's read ended mid-line), joined up to the F
                partial += m.group(6)
                if m.group(5) == "P":
                    continue
                text, partial = partial, ""
                if text == "done":
                    continue
                word, n, rest = text.split(" ")
                assert word == "seq" and rest == pad, text
                seqs.append(int(n))
    assert seqs and seqs[-1] == total - 1, seqs[-5:]
    assert seqs == list(range(seqs[0], total)), "lines lost or reordered around %r" % [
        (a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1][:5]
    assert "rpc ReopenContainerLog" in node.daemon.logs()
