"""A real kubelet with PodAndContainerStatsFromCRI takes pod and container
stats and the /metrics/cadvisor samples from cricketd (ListPodSandboxStats,
ListContainerStats, ListMetricDescriptors, ListPodSandboxMetrics) instead of
cAdvisor: /stats/summary shows our figures, /metrics/cadvisor our metric
names with kubelet's namespace/pod/container labels added. One node for the
module, as in test_node.py."""
import json
import random
import re
import time

import pytest

import kubenode
from test_node import container, pytestmark, running_ready, sleeper  # noqa: F401


@pytest.fixture(scope="module")
def node():
    yield from kubenode.module_node(
        kubelet_config={"featureGates": {"PodAndContainerStatsFromCRI": True}})


def poll(fn, what, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(1)
    raise AssertionError("%s: not seen in %d s (last: %r)" % (what, timeout, last))


def test_summary_and_cadvisor_metrics_come_from_cri(node):
    name = "stats-%04x" % random.getrandbits(16)
    node.add_pod(name, {"containers": [{"name": "burn", "command": sleeper(
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")}]})
    try:
        p = node.wait_pod(name, running_ready, "Running and Ready")
        full = p["metadata"]["name"]
        sandbox = node.sandboxes(name)[0].id

        def pod_stats():
            summary = json.loads(node.get("/stats/summary"))
            for ps in summary.get("pods") or []:
                if ps["podRef"]["name"] == full and ps.get("containers") and \
                        ps.get("cpu", {}).get("usageCoreNanoSeconds") and ps.get("network"):
                    return ps
            return None

        ps = poll(pod_stats, "the pod in /stats/summary with cpu and network")
        assert ps["podRef"]["namespace"] == node.namespace
        assert ps["memory"]["workingSetBytes"] > 0
        assert ps["network"]["name"] == "eth0"
        assert "rxBytes" in ps["network"] and "txBytes" in ps["network"]
        [c] = ps["containers"]
        assert c["name"] == "burn"
        assert c["cpu"]["usageCoreNanoSeconds"] > 0 and c["memory"]["workingSetBytes"] > 0
        # the container's process; no pause: kubelet's pods do not share
        # their pid namespace, so cricket runs them without an infra
        # (runtime.drop_infra)
        assert ps["process_stats"]["process_count"] >= 1

        [ctr] = [c for c in node.cri.call("ListContainers").containers
                 if c.pod_sandbox_id == sandbox]

        def metrics():
            text = node.get("/metrics/cadvisor").decode()
            ok = re.search(r'^container_network_receive_bytes_total\{[^}]*id="%s"[^}]*'
                           r'interface="eth0"[^}]*name="POD"[^}]*\} [1-9]' % sandbox, text, re.M) \
                and re.search(r'^container_memory_working_set_bytes\{[^}]*id="%s"[^}]*\} [1-9]' %
                              ctr.id, text, re.M)
            return text if ok else None

        text = poll(metrics, "our samples on /metrics/cadvisor")
        # kubelet 1.36 passes our labels (id, name, image) through; newer ones add
        # namespace, pod and container
        for metric in ("container_cpu_usage_seconds_total", "container_processes",
                       "container_oom_events_total", "container_fs_usage_bytes",
                       "container_memory_rss"):
            m = re.search(r'^%s\{([^}]*id="%s"[^}]*)\}' % (metric, ctr.id), text, re.M)
            assert m, metric
            assert 'name="k8s_burn_' in m.group(1) and 'image="' in m.group(1), m.group(0)
        assert "# TYPE container_network_receive_bytes_total counter" in text
        assert "# TYPE container_memory_working_set_bytes gauge" in text
        # kubelet took all of it from cricketd (it falls back to cAdvisor on
        # UNIMPLEMENTED), and every such call succeeded
        logs = node.daemon.logs()
        for rpc in ("ListPodSandboxStats", "ListMetricDescriptors", "ListPodSandboxMetrics"):
            assert 'msg="rpc %s"' % rpc in logs, rpc
            assert "rpc=%s code=" % rpc not in logs, rpc
    finally:
        node.remove_pod(name)
        node.wait_stopped(name)
