"""Issue 14: kubelet with PodAndContainerStatsFromCRI and EventedPLEG on
(test/node/README.md).

Both gates are alpha in Kubernetes v1.36.3 (pkg/features/kube_features.go:
PodAndContainerStatsFromCRI alpha since 1.23, EventedPLEG alpha since 1.26,
both default false), so a 1.36 kubelet runs without them unless told; the
default-gate run stays test_node.py. This module is a second node with both
gates on (and kubelet at --v=4, where evented PLEG logs its fallbacks) that
runs a representative subset of test_node.py's scenarios -- starts,
crash-loop restarts, liveness restarts, an OOM kill (the STOPPED event's
status must carry reason OOMKilled), init containers and a sidecar,
removal, kubelet restart -- all of which depend on the container events
(with EventedPLEG the generic relist runs only every 300 s, so a missed or
ignored event shows as a scenario timing out), then scrapes kubelet's
/metrics/cadvisor (ListMetricDescriptors + ListPodSandboxMetrics) and
/stats/summary (ListPodSandboxStats), and finally reads kubelet's log: no
error line about cricket's stats, metrics or events, no fallback to
relisting, one GetContainerEvents per kubelet start."""
import json
import os
import re
import ssl
import time
import urllib.request

import pytest

import kubenode
# the scenarios run again on this module's node (pytest resolves `node` here)
from test_node import (  # noqa: F401
    container, pods, running_ready, sleeper, test_exec_liveness_restart_keeps_previous_log,
    test_exit_1_crashloopbackoff, test_init_containers_and_sidecar,
    test_kubelet_restart_adopts_pods, test_manifest_removed_pod_removed_nothing_left,
    test_memory_limit_oomkilled, test_two_containers_emptydir_env_args_logs, pytestmark)

GATES = {"PodAndContainerStatsFromCRI": True, "EventedPLEG": True}


@pytest.fixture(scope="module")
def node():
    kube_bin, reason = kubenode.find_kube_bin()
    if kube_bin is None:
        pytest.skip(reason)
    n = kubenode.Node(kube_bin)
    n.kubelet_config["featureGates"] = dict(GATES)
    n.kubelet_args = ["--v=4"]  # after --v=2: the last one counts
    try:
        n.start()
        yield n
    finally:
        n.stop()


def kubelet_get(node, path):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = "https://%s:%d%s" % (node.kubelet_host, node.port, path)
    with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
        return r.read().decode()


SAMPLE = re.compile(r'^([a-z_]+)\{(.*)\} (\S+)(?: \d+)?$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def scrape(node):
    """kubelet's /metrics/cadvisor as [(name, {label: value}, float)]."""
    out = []
    for line in kubelet_get(node, "/metrics/cadvisor").splitlines():
        m = SAMPLE.match(line)
        if m:
            out.append((m.group(1), dict(LABEL.findall(m.group(2))), float(m.group(3))))
    return out


# the container burns 1.5 s of cpu (its own cgroup's counter: the CRI metric
# is whole seconds), then serves HTTP so the test can make pod network traffic
BURN = ("u() { if [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then "
        "cat /sys/fs/cgroup/cpuacct/cpuacct.usage; else while read k v; do "
        "[ $k = usage_usec ] && echo ${v}000; done < /sys/fs/cgroup/cpu.stat; fi; }; "
        "while [ $(u) -lt 1500000000 ]; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; "
        "done; echo burnt; mkdir /www; echo hello-from-pod > /www/index.html; "
        "exec httpd -f -p 8080 -h /www")


def test_kubelet_cadvisor_metrics_and_summary_from_cri(node, pods):
    name = pods("usage", {"containers": [{"name": "burn", "command": ["sh", "-c", BURN],
                                          "readinessProbe": {
                                              "httpGet": {"path": "/", "port": 8080},
                                              "periodSeconds": 1}}]})
    p = node.wait_pod(name, running_ready, "Running and Ready (1.5 s of cpu burnt)", timeout=180)
    ip = p["status"]["podIP"]
    for _ in range(20):  # pod network traffic beyond the probes
        with urllib.request.urlopen("http://%s:8080/" % ip, timeout=10) as r:
            assert r.read() == b"hello-from-pod\n"
    cid = container(p, "burn")["containerID"].split("://")[1]
    sb = [s for s in node.sandboxes(name) if s.state == 0][0]

    # what cricket answers, and what kubelet makes of it
    cri = node.cri.call("ListPodSandboxMetrics").pod_metrics
    descs = {d.name: list(d.label_keys) for d in node.cri.call("ListMetricDescriptors").descriptors}
    mine = [pm for pm in cri if pm.pod_sandbox_id == sb.id]
    assert len(mine) == 1, [pm.pod_sandbox_id for pm in cri]
    ctr = [cm for cm in mine[0].container_metrics if cm.container_id == cid]
    assert len(ctr) == 1, mine[0]
    want_names = {m.name for m in ctr[0].metrics}
    for m in list(ctr[0].metrics) + list(mine[0].metrics):
        assert m.name in descs, "no descriptor for %s" % m.name
        assert len(m.label_values) == len(descs[m.name]), (m, descs[m.name])
    samples = scrape(node)
    by_ctr = {}
    for n, labels, v in samples:
        if labels.get("id") == cid:
            by_ctr.setdefault(n, []).append((labels, v))
    # kubelet turned every one of the container's CRI metrics into a sample
    assert set(by_ctr) == want_names, (sorted(by_ctr), sorted(want_names))
    for n in ("container_cpu_usage_seconds_total", "container_memory_usage_bytes",
              "container_memory_working_set_bytes", "container_memory_rss", "container_processes",
              "container_spec_memory_limit_bytes", "container_last_seen"):
        assert n in by_ctr, (n, sorted(by_ctr))
    labels, cpu = by_ctr["container_cpu_usage_seconds_total"][0]
    assert cpu >= 1, by_ctr["container_cpu_usage_seconds_total"]
    assert labels["name"].startswith("k8s_burn_" + name), labels
    assert labels["image"].endswith("busybox:latest"), labels
    for n in ("container_memory_usage_bytes", "container_memory_working_set_bytes",
              "container_memory_rss", "container_processes"):
        assert by_ctr[n][0][1] > 0, (n, by_ctr[n])
    net = {}
    for n, labels, v in samples:
        if labels.get("id") == sb.id and n.startswith("container_network_"):
            net[(n, labels.get("interface"))] = v
    for d in ("receive", "transmit"):
        assert net.get(("container_network_%s_bytes_total" % d, "eth0"), 0) > 20 * 15, net
        assert net.get(("container_network_%s_packets_total" % d, "eth0"), 0) >= 20, net

    # /stats/summary from ListPodSandboxStats
    summary = json.loads(kubelet_get(node, "/stats/summary"))
    ps = [x for x in summary["pods"] if x["podRef"]["uid"] == p["metadata"]["uid"]]
    assert len(ps) == 1, [x["podRef"] for x in summary["pods"]]
    ps = ps[0]
    assert ps["podRef"]["name"] == p["metadata"]["name"], ps["podRef"]
    assert [c["name"] for c in ps["containers"]] == ["burn"], ps["containers"]
    c = ps["containers"][0]
    assert c["cpu"]["usageCoreNanoSeconds"] >= 1500000000, c["cpu"]
    assert ps["cpu"]["usageCoreNanoSeconds"] >= c["cpu"]["usageCoreNanoSeconds"], ps["cpu"]
    assert c["memory"]["workingSetBytes"] > 0 and c["memory"]["usageBytes"] > 0, c["memory"]
    assert ps["memory"]["workingSetBytes"] >= c["memory"]["workingSetBytes"], ps["memory"]
    assert c["rootfs"]["usedBytes"] > 0 and c["rootfs"]["capacityBytes"] > 0, c["rootfs"]
    assert ps["network"]["name"] == "eth0", ps["network"]
    assert ps["network"]["rxBytes"] > 20 * 15 and ps["network"]["txBytes"] > 20 * 15, ps["network"]
    rt = summary["node"]["runtime"]["imageFs"]
    assert rt["capacityBytes"] > 0 and rt["usedBytes"] > 0, rt


# kubelet's error lines (klog "E" prefix) and every line naming these RPCs or
# kubelet's evented PLEG / CRI stats code
ERROR = re.compile(r"^E\d{4} ")
ABOUT = re.compile(r"PodSandboxStats|ContainerStats|ContainerEvents|PodSandboxMetrics|"
                   r"MetricDescriptors|UpdatePodSandboxResources|[Ee]vented|cri_stats_provider|"
                   r"cri_metrics|imagefs|image filesystem|[Ss]tats")
# lines kubelet logs at --v=4 about these RPCs doing their job
FINE = re.compile(r'"Received Container (Created|Started|Stopped|Deleted) Event"|'
                  r'"Evented PLEG: Generated pod status from the received event"|'
                  r'"Updated" featureGates=|'
                  r'"container event received"|'  # remote_runtime.go: each event as received
                  r'"Event occurred"|'  # the pod's Kubernetes events (Pulled, Started, ...)
                  r'^I\d{4} .*"Stats initialization|"Starting plugin manager"')


def about_cricket(lines, i, node):
    """Why line i is not about cricket's answers, or None (it is)."""
    line = lines[i]
    # kubelet's first image GC at start: its cAdvisor has no sample of any
    # disk yet, so the capacity of the mountpoint cricket named is unknown;
    # kubelet says so on the line before ("unable to find data in memory
    # cache", cri_stats_provider.go getFsInfo) -- cricket's ImageFsInfo answer
    # is used as is, the capacity never comes from the runtime
    cadvisor_cold = 'mountpoint="%s" err="unable to find data in memory cache"' % node.daemon.root
    if cadvisor_cold in line:
        return "cAdvisor not warmed up"
    if "invalid capacity 0 on image filesystem" in line:
        if any(cadvisor_cold in prev for prev in lines[max(0, i - 3):i]):
            return "cAdvisor not warmed up"
    # kubelet's own cAdvisor: no imagefs label exists for runtimes other than
    # containerd and CRI-O (cadvisor's fs labels), cricket is not asked
    if "no imagefs label for configured runtime" in line:
        return "cAdvisor label"
    return None


EVENT = re.compile(r'^I\d{4} \S+ +(\d+) remote_runtime\.go:\d+\] "container event received" '
                   r'resp="(.*)"$')
EV_ID = re.compile(r'^container_id:\\"([0-9a-f]+)\\"')
EV_TYPE = re.compile(r'container_event_type:CONTAINER_(\w+)_EVENT')
EV_AT = re.compile(r'created_at:(\d+)')
EV_UID = re.compile(r'metadata:\{name:\\"[^\\]*\\"  uid:\\"([0-9a-f-]+)\\"')
EV_SANDBOX = re.compile(r'pod_sandbox_status:\{id:\\"([0-9a-f]+)\\"')
EV_STATUSES = re.compile(r'containers_statuses:\{id:\\"([0-9a-f]+)\\"')
EV_ORDER = ["CREATED", "STARTED", "STOPPED", "DELETED"]


def event_problems(lines):
    """kubelet's --v=4 "container event received" lines, checked the way
    EventedPLEG uses them: per kubelet process and pod, created_at never
    goes back (kubelet's cache ignores an older one); per container the
    types come in lifecycle order, once each; each carries the pod's
    status, and a container's own status unless it was deleted."""
    newest, stage, problems, n = {}, {}, [], 0
    for line in lines:
        m = EVENT.match(line)
        if not m:
            continue
        n += 1
        resp = m.group(2)
        cid = EV_ID.match(resp).group(1)
        t = EV_TYPE.search(resp)
        kind = t.group(1) if t else "CREATED"  # 0, left out of the text form
        at = int(EV_AT.search(resp).group(1))
        uid, sb = EV_UID.search(resp), EV_SANDBOX.search(resp)
        if uid is None or sb is None:
            problems.append("no pod status: " + resp[:200])
            continue
        pod = (m.group(1), uid.group(1))
        if at < newest.get(pod, 0):
            problems.append("created_at %d before %d: %s %s" % (at, newest[pod], kind, cid))
        newest[pod] = max(newest.get(pod, 0), at)
        i = EV_ORDER.index(kind)
        if i <= stage.get((m.group(1), cid), -1):
            problems.append("%s after %s: %s" % (kind, EV_ORDER[stage[(m.group(1), cid)]], cid))
        stage[(m.group(1), cid)] = i
        if cid != sb.group(1) and kind != "DELETED" and cid not in EV_STATUSES.findall(resp):
            problems.append("%s of %s without its status" % (kind, cid))
    return n, problems


def test_kubelet_log_no_error_about_cri_stats_or_events(node):
    """Runs last in this module: the whole node's life so far."""
    time.sleep(5)  # a stats round of the eviction manager and the summary API
    with open(node.kubelet_log_path, errors="replace") as f:
        lines = f.read().splitlines()
    bad, allowed = [], []
    for i, line in enumerate(lines):
        if not (ERROR.match(line) or ABOUT.search(line)) or FINE.search(line):
            continue
        if ERROR.match(line) is None and not re.search(r"[Ee]rr|[Ff]ail|[Ww]arn|relist", line):
            continue  # an informational line naming the RPCs, not a complaint
        if ERROR.match(line) and not ABOUT.search(line):
            continue  # an error about something else (test_node.py's concern)
        why = about_cricket(lines, i, node)
        (allowed if why else bad).append((why, line[:400]))
    keep = os.environ.get("CRICKET_NODE_KEEP_LOGS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        with open(os.path.join(keep, node.node_name + "-kubelet.cristats"), "w") as f:
            f.write("".join("%s: %s\n" % x for x in allowed + bad))
    assert not bad, "kubelet complained about cricket's stats/metrics/events:\n" + "\n".join(
        l for _, l in bad)
    log = "\n".join(lines)
    # the events were used and never given up on
    assert "Received Container Started Event" in log
    assert "Fall back to Generic PLEG relisting" not in log
    assert "Failed to get container events" not in log
    n, problems = event_problems(lines)
    assert n > 0 and not problems, (n, problems)
    # one subscription per kubelet start (test 10 restarts it): no retry
    starts = log.count('"Kubelet version"')
    subs = node.daemon.logs().count("rpc GetContainerEvents")
    assert starts >= 1 and subs == starts, (subs, starts)
