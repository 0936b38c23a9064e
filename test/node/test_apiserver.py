"""Issue 12 with an API server: etcd + kube-apiserver + this kubelet on
cricketd (kubeapi.py), pods created with kubectl with nodeName set.

kubectl talks to the API server over WebSocket by default (exec, attach, cp,
port-forward); KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false and
KUBECTL_PORT_FORWARD_WEBSOCKETS=false make it use SPDY. Its WebSocket
dialers fall back to SPDY silently, so every streaming test runs kubectl at
-v=6 and checks the verb of the upgrade it made (WebSocket: GET, SPDY:
POST)."""
import json
import os
import pty
import random
import re
import select
import subprocess
import time
import urllib.request

import pytest

import kubeapi
import kubenode
from test_node import sleeper

ok, why = kubenode.prereqs()
if ok and not os.path.exists(kubeapi.ETCD):
    ok, why = False, "etcd not installed (Debian's etcd-server)"
pytestmark = pytest.mark.skipif(not ok, reason=why)

TRANSPORTS = {
    "websocket": ({}, "GET"),
    "spdy": ({"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
              "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}, "POST"),
}
KLOG = re.compile(r"^[IWEF]\d{4} ")


@pytest.fixture(scope="module")
def node():
    kube_bin, reason = kubenode.find_kube_bin()
    if kube_bin is None:
        pytest.skip(reason)
    cp = kubeapi.ControlPlane(kube_bin)
    n = None
    try:
        cp.start()
        n = kubeapi.ApiNode(kube_bin, cp)
        n.start()
        cp.kubectl("create", "namespace", n.namespace)
        wait_node(n, lambda c: c == "True", "Ready")
        yield n
    finally:
        if n is not None:
            keep = os.environ.get("CRICKET_NODE_KEEP_LOGS")
            if keep and n.kubelet_log:
                os.makedirs(keep, exist_ok=True)
                with open(os.path.join(keep, n.node_name + "-kubelet.errors"), "w") as f:
                    f.write("\n".join(n.error_lines()) + "\n")
            n.stop()
        cp.stop()


@pytest.fixture
def pods(node):
    """create(name, spec): a pod on the node; deleted after the test."""
    made = []

    def create(name, spec):
        name = "%s-%04x" % (name, random.getrandbits(16))
        made.append(name)
        node.create_pod(name, spec)
        return name

    yield create
    # not waited for: the kubelet stops and deletes them while later tests run
    # (the module's teardown removes whatever is left through CRI)
    for name in made:
        node.cp.kubectl("delete", "pod", "-n", node.namespace, name, "--ignore-not-found",
                        "--wait=false", check=False)


def wait_node(node, pred, what, timeout=120):
    deadline = time.monotonic() + timeout
    ready = None
    while time.monotonic() < deadline:
        n = node.api_node()
        ready = {c["type"]: c for c in n["status"].get("conditions") or []}.get("Ready")
        if ready and pred(ready["status"]):
            return n
        time.sleep(1)
    raise AssertionError("node not %s in %ds: %r\n%s" % (what, timeout, ready,
                                                         node.diagnostics()))


def ready(p):
    conds = {c["type"]: c["status"] for c in p["status"].get("conditions") or []}
    return p["status"].get("phase") == "Running" and conds.get("Ready") == "True"


def kubectl_env(transport):
    return TRANSPORTS[transport][0]


def assert_transport(stderr, transport, what):
    """kubectl -v=6 logs each response: the upgrade's verb names the transport."""
    verb = TRANSPORTS[transport][1]
    ups = re.findall(r'verb="(\w+)" url="[^"]*/%s(?:\?[^"]*)?" status="101' % what, stderr)
    assert ups and set(ups) == {verb}, "want %s %s upgrades, got %r:\n%s" % (
        verb, what, ups, stderr[-3000:])


def strip_klog(text):
    return "\n".join(line for line in text.splitlines() if not KLOG.match(line))


def web_pod(pods, node, word):
    name = pods("web", {"containers": [
        {"name": "web",
         "command": ["sh", "-c", "mkdir -p /www && echo %s > /www/index.html && "
                     "exec httpd -f -p 8080 -h /www" % word],
         "ports": [{"containerPort": 8080}]}]})
    node.wait_api_pod(name, ready, "Running and Ready")
    return name


def test_kubectl_logs_follow(node, pods):
    name = pods("logs", {"restartPolicy": "Never", "containers": [
        {"name": "c", "command": ["sh", "-c", "echo first; sleep 3; i=0; "
                                  "while [ $i -lt 5 ]; do echo line-$i; i=$((i+1)); "
                                  "sleep 0.5; done; echo last"]}]})
    node.wait_api_pod(name, lambda p: p["status"].get("phase") in ("Running", "Succeeded"),
                      "started")
    # started while the container still prints: -f ends when it exits
    r = node.cp.kubectl("logs", "-f", "-n", node.namespace, name, timeout=60)
    assert r.stdout.splitlines() == ["first"] + ["line-%d" % i for i in range(5)] + ["last"], r
    p = node.wait_api_pod(name, lambda p: p["status"].get("phase") == "Succeeded", "Succeeded")
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_kubectl_exec_tty_stdin_exit_code(node, pods, transport):
    name = pods("tty", {"containers": [{"name": "c", "command": sleeper("true")}]})
    node.wait_api_pod(name, ready, "Running and Ready")
    master, slave = pty.openpty()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(
        node.cp.kubectl_argv("exec", "-it", "-n", node.namespace, name, "-v=6", "--",
                             "sh", "-c", 'tty; printf "name? "; read x; echo "got:$x"; exit 3'),
        stdin=slave, stdout=slave, stderr=err_w, env=dict(os.environ, **kubectl_env(transport)),
        close_fds=True)
    os.close(slave)
    os.close(err_w)
    out, err = b"", b""
    sent = False
    open_fds = {master, err_r}
    deadline = time.monotonic() + 60
    while open_fds and time.monotonic() < deadline:
        rd, _, _ = select.select(list(open_fds), [], [], 0.5)
        for fd in rd:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the pty's other side is closed (kubectl exited)
                chunk = b""
            if not chunk:
                open_fds.discard(fd)
            elif fd == master:
                out += chunk
            else:
                err += chunk
        if not sent and b"name? " in out:
            os.write(master, b"cricket\r")
            sent = True
    try:
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(err_r)
    text = out.decode(errors="replace")
    assert re.search(r"/dev/pts/\d+", text), text
    assert "got:cricket" in text, text
    assert rc == 3, (rc, text, err.decode()[-2000:])
    assert_transport(err.decode(errors="replace"), transport, "exec")


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_kubectl_exec_no_tty(node, pods, transport):
    name = pods("exec", {"containers": [{"name": "c", "command": sleeper("true")}]})
    node.wait_api_pod(name, ready, "Running and Ready")
    data = "".join("row %d %s\n" % (i, "y" * 60) for i in range(3000))  # ~200 KB
    r = node.cp.kubectl("exec", "-i", "-n", node.namespace, name, "-v=6", "--", "sh", "-c",
                        "tty || true; wc -l; echo to-stderr >&2; exit 7", input=data,
                        check=False, env=kubectl_env(transport))
    assert r.returncode == 7, r
    assert r.stdout.split() == ["not", "a", "tty", "3000"], r.stdout
    assert strip_klog(r.stderr).splitlines()[0] == "to-stderr", r.stderr
    assert_transport(r.stderr, transport, "exec")


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_kubectl_attach(node, pods, transport):
    name = pods("attach", {"restartPolicy": "Never", "containers": [
        {"name": "c", "stdin": True, "stdinOnce": True,
         "command": ["sh", "-c", 'while read l; do echo "echo:$l"; done; echo "stdin closed"']}]})
    node.wait_api_pod(name, ready, "Running and Ready")
    proc = subprocess.Popen(node.cp.kubectl_argv("attach", "-i", "-n", node.namespace, name,
                                                 "-v=6"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ,
                                                             **kubectl_env(transport)))
    try:
        out, err = proc.communicate(b"one\ntwo\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    # stdinOnce: kubectl's end of input closes the container's stdin, the loop ends
    assert text.splitlines()[-3:] == ["echo:one", "echo:two", "stdin closed"], (text, err)
    assert proc.returncode == 0, err
    p = node.wait_api_pod(name, lambda p: p["status"].get("phase") == "Succeeded", "Succeeded")
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert_transport(err.decode(errors="replace"), transport, "attach")


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_kubectl_port_forward_http_get(node, pods, transport):
    word = "forwarded-%06x" % random.getrandbits(24)
    name = web_pod(pods, node, word)
    port = kubenode.registry.free_port()
    proc = subprocess.Popen(node.cp.kubectl_argv("port-forward", "-n", node.namespace,
                                                 "pod/" + name, "%d:8080" % port,
                                                 "--address", "127.0.0.1", "-v=6"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, **kubectl_env(transport)))
    try:
        line = proc.stdout.readline().decode()  # "Forwarding from 127.0.0.1:<port> -> 8080"
        assert "Forwarding from 127.0.0.1:%d" % port in line, line
        bodies = []
        for _ in range(2):  # two connections over the one forwarding session
            with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port,
                                        timeout=20) as r:
                bodies.append(r.read().decode())
        assert bodies == [word + "\n"] * 2, bodies
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert_transport(err.decode(errors="replace"), transport, "portforward")


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_kubectl_cp_both_ways(node, pods, transport, tmp_path):
    name = pods("cp", {"containers": [{"name": "c", "command": sleeper("true")}]})
    node.wait_api_pod(name, ready, "Running and Ready")
    env = kubectl_env(transport)
    payload = random.getrandbits(8 * 300000).to_bytes(300000, "little")
    src = tmp_path / "up.bin"
    src.write_bytes(payload)
    ns_pod = "%s/%s" % (node.namespace, name)
    node.cp.kubectl("cp", str(src), ns_pod + ":/tmp/up.bin", env=env)
    r = node.cp.kubectl("exec", "-n", node.namespace, name, "--", "sh", "-c",
                        "wc -c < /tmp/up.bin; cp /tmp/up.bin /tmp/down.bin; "
                        "echo extra >> /tmp/down.bin", env=env)
    assert r.stdout.strip() == str(len(payload)), r
    dst = tmp_path / "down.bin"
    node.cp.kubectl("cp", ns_pod + ":/tmp/down.bin", str(dst), env=env)
    assert dst.read_bytes() == payload + b"extra\n"
    # failure paths: into a directory the pod lacks, kubectl fails with the
    # remote tar's exit code; from a path the pod lacks, nothing is written
    # locally (there kubectl's own exit code races its exec goroutine with
    # the end of the untar: kubectl/pkg/cmd/cp, TarPipe.initReadFrom)
    r = node.cp.kubectl("cp", str(src), ns_pod + ":/no/such/dir/up.bin", env=env, check=False)
    assert r.returncode != 0, r
    assert "exit code" in r.stderr or "No such file" in r.stdout + r.stderr, r
    r = node.cp.kubectl("cp", ns_pod + ":/tmp/missing", str(tmp_path / "missing"), env=env,
                        check=False)
    assert not (tmp_path / "missing").exists(), r


def test_get_node_runtime_version_ready_images(node):
    v = node.cri.call("Version")
    assert v.runtime_name == "cricket", v
    r = node.cp.kubectl("get", "node", node.node_name, "-o", "wide")
    assert "cricket://" + v.runtime_version in r.stdout, r.stdout
    n = wait_node(node, lambda c: c == "True", "Ready")
    info = n["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"] == "cricket://" + v.runtime_version, info
    assert info["kubeletVersion"] == "v1.36.3", info
    addrs = {a["type"]: a["address"] for a in n["status"]["addresses"]}
    assert addrs.get("InternalIP") == node.net.gateway, addrs
    # the images of earlier tests' pods (pulled by the kubelet through cricket):
    # kubelet refreshes its image list every 30 s, node status every 10 s
    listed = {t for i in node.cri.call("ListImages").images for t in i.repo_tags}
    assert "docker.io/library/busybox:latest" in listed, listed
    deadline = time.monotonic() + 90
    while True:
        names = {nm for img in node.api_node()["status"].get("images") or []
                 for nm in img["names"]}
        if listed <= names or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert listed <= names, (listed, names)


def pod_cgroup_file(node, pod, ctrl, name):
    """kubelet's pod cgroup (cgroupfs driver), cgroup v1 or v2."""
    qos = {"Guaranteed": "", "Burstable": "burstable", "BestEffort": "besteffort"}
    rel = os.path.join(node.cgroup_root.strip("/"), "kubepods", qos[pod["status"]["qosClass"]],
                       "pod" + pod["metadata"]["uid"])
    v2 = os.path.join(kubenode.CGROUP, rel, name)
    if os.path.exists(os.path.join(kubenode.CGROUP, "cgroup.controllers")):
        return v2
    return os.path.join(kubenode.CGROUP, ctrl, rel, name)


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


# in-place resize (GA in 1.35): kubelet resizes the pod cgroup, calls
# UpdatePodSandboxResources, then UpdateContainerResources per container
def test_resize_cpu_memory_in_place(node, pods):
    res = lambda cpu, mem: {"requests": {"cpu": cpu, "memory": mem},  # noqa: E731
                            "limits": {"cpu": cpu, "memory": mem}}
    name = pods("resize", {"containers": [{"name": "c", "command": sleeper("echo up"),
                                           "resources": res("200m", "48Mi")}]})
    p = node.wait_api_pod(name, ready, "Running and Ready")
    cid = p["status"]["containerStatuses"][0]["containerID"]
    sb = [s for s in node.cri.call("ListPodSandbox").items
          if s.metadata.uid == p["metadata"]["uid"] and s.state == 0]
    assert len(sb) == 1, sb
    is_v2 = os.path.exists(os.path.join(kubenode.CGROUP, "cgroup.controllers"))
    cpu_file = pod_cgroup_file(node, p, "cpu", "cpu.max" if is_v2 else "cpu.cfs_quota_us")
    mem_file = pod_cgroup_file(node, p, "memory",
                               "memory.max" if is_v2 else "memory.limit_in_bytes")
    assert (read_int(cpu_file), read_int(mem_file)) == (20000, 48 << 20)
    calls = node.daemon.logs().count("rpc UpdatePodSandboxResources")
    patch = {"spec": {"containers": [{"name": "c", "resources": res("400m", "64Mi")}]}}
    node.cp.kubectl("patch", "pod", "-n", node.namespace, name, "--subresource", "resize",
                    "--patch", json.dumps(patch))

    def resized(p):
        st = p["status"]["containerStatuses"][0]
        conds = {c["type"] for c in p["status"].get("conditions") or []}
        return (st.get("resources", {}).get("limits") == {"cpu": "400m", "memory": "64Mi"} and
                "PodResizeInProgress" not in conds and "PodResizePending" not in conds)
    p = node.wait_api_pod(name, resized, "resized to 400m / 64Mi")
    st = p["status"]["containerStatuses"][0]
    assert st["containerID"] == cid and st["restartCount"] == 0, st  # in place
    assert (read_int(cpu_file), read_int(mem_file)) == (40000, 64 << 20)
    # cricket was told and recorded the pod's new limits (PodSandboxStatus verbose)
    assert node.daemon.logs().count("rpc UpdatePodSandboxResources") > calls
    info = json.loads(node.cri.call("PodSandboxStatus", pod_sandbox_id=sb[0].id,
                                    verbose=True).info["info"])
    assert info["resources"]["cpu_quota"] == 40000, info["resources"]
    assert info["resources"]["cpu_period"] == 100000, info["resources"]
    assert info["resources"]["memory_limit"] == 64 << 20, info["resources"]
    # and the container's own cgroup (UpdateContainerResources)
    r = node.cp.kubectl("exec", "-n", node.namespace, name, "--", "cat",
                        "/sys/fs/cgroup/cpu.max" if is_v2 else "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                        "/sys/fs/cgroup/memory.max" if is_v2 else
                        "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert [int(line.split()[0]) for line in r.stdout.splitlines()] == [40000, 64 << 20], r.stdout


def test_graceful_deletion_sigterm_then_sigkill(node, pods):
    grace = 6
    name = pods("grace", {"terminationGracePeriodSeconds": grace, "containers": [
        {"name": "stubborn",
         "command": ["sh", "-c", "trap 'echo TERM-ignored' TERM; echo up; "
                     "while true; do sleep 0.2; done"]},
        {"name": "polite",
         "command": ["sh", "-c", "trap 'echo TERM-exit; exit 0' TERM; echo up; "
                     "while true; do sleep 0.2; done"]}]})
    p = node.wait_api_pod(name, ready, "Running and Ready")
    ids = {c["name"]: c["containerID"].split("://", 1)[1] for c in p["status"]["containerStatuses"]}
    logs = {}
    for c, cid in ids.items():
        logs[c] = node.cri.call("ContainerStatus", container_id=cid).status.log_path
    # both print "up" before the delete: their traps are set
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(os.path.exists(f) and "up" in open(f).read() for f in logs.values()):
            break
        time.sleep(0.2)
    t0 = time.time_ns()
    node.cp.kubectl("delete", "pod", "-n", node.namespace, name, "--wait=false")
    final, seen = {}, {c: "" for c in ids}
    deadline = time.monotonic() + grace + 60
    while time.monotonic() < deadline and len(final) < len(ids):
        for c, cid in ids.items():
            if c in final:
                continue
            try:
                seen[c] = open(logs[c]).read()
            except OSError:
                pass
            st = node.cri.call("ContainerStatus", container_id=cid).status
            if st.state == 2:  # CONTAINER_EXITED
                final[c] = st
        time.sleep(0.2)
    assert len(final) == len(ids), (final, node.diagnostics())
    # polite: SIGTERM ran its trap, exit 0 (no SIGKILL needed)
    assert final["polite"].exit_code == 0, final["polite"]
    assert "TERM-exit" in seen["polite"], seen
    # stubborn: SIGTERM first (the trap printed), SIGKILL once the grace period ran out
    assert "TERM-ignored" in seen["stubborn"], seen
    assert final["stubborn"].exit_code == 137, final["stubborn"]
    assert final["stubborn"].finished_at - t0 >= (grace - 1) * 10 ** 9, (
        final["stubborn"].finished_at - t0)
    # no controller-manager: the kubelet deletes the terminated pod object itself
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and node.api_pod(name) is not None:
        time.sleep(1)
    assert node.api_pod(name) is None, node.diagnostics()


def test_node_not_ready_while_cricketd_stopped(node, pods):
    name = pods("survivor", {"containers": [{"name": "c", "command": sleeper("true")}]})
    p = node.wait_api_pod(name, ready, "Running and Ready")
    cid = p["status"]["containerStatuses"][0]["containerID"]
    wait_node(node, lambda c: c == "True", "Ready")
    node.cri.close()
    node.daemon.stop()
    node.daemon.log.close()
    try:
        n = wait_node(node, lambda c: c == "False", "NotReady", timeout=180)
        cond = {c["type"]: c for c in n["status"]["conditions"]}["Ready"]
        assert "runtime" in cond["message"].lower(), cond
        assert "NotReady" in node.cp.kubectl("get", "node", node.node_name).stdout
    finally:
        node.daemon.start()
        node.cri = kubenode.Cri(node.daemon.socket)
    wait_node(node, lambda c: c == "True", "Ready again", timeout=180)
    # the pod lived on: same container, not restarted
    p = node.wait_api_pod(name, ready, "Running and Ready after the restart")
    st = p["status"]["containerStatuses"][0]
    assert st["containerID"] == cid and st["restartCount"] == 0, json.dumps(st)
