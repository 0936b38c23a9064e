#!/usr/bin/python3
"""Streaming figures on this host (run as root from a build tree):

  CRICKETD=build/cricketd CRI_PY_GEN=build/gen/py bench/streaming_bench.py

- exec round trip over SPDY: Exec RPC, upgrade, streams, status read; with
  the fake in-process backend (`exit 0`, the server's own cost) and against a
  real container (`true` through a monitor in interactive exec mode and runc
  exec), side by side; plus the monitor's RSS in interactive exec mode;
- port-forward throughput over one SPDY stream from busybox httpd in a netns
  (100 MB file; the Python client is part of what is measured);
- daemon RSS growth while a client does not read 100 MB of exec output."""
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))
import conftest  # noqa: E402
import streaming_clients as sc  # noqa: E402

V4 = ["v4.channel.k8s.io"]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def exec_round_trips(cri, n=200):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        url = cri.call("Exec", container_id="fake-b", cmd=["exit", "0"], stdout=True).url
        c, _ = sc.spdy_connect(url, V4)
        ids = sc.exec_streams(c, stdout=True, stderr=False)
        c.read_until(lambda: ids["error"] in c.fin)
        c.close()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def real_exec_figures(n=30):
    """Exec `true` over SPDY in a real busybox container: (median ms, p99 ms,
    monitor VmRSS kB while an exec runs)."""
    from registry import Registry, busybox_layer, make_tmp, push_image, registry_config, rmtree
    from test_container import Pod
    from test_sandbox import Env
    rbase = make_tmp("cricket-sbench-reg-")
    reg = Registry(rbase)
    env = None
    try:
        reg.busybox = push_image(reg, "library/busybox", "latest", [busybox_layer()])
        env = Env(tempfile.mkdtemp(prefix="cs-bench-", dir="/tmp"),
                  extra_config=registry_config(reg.host)).start()
        pod = Pod(env, reg)
        cid = pod.run("box", command=["/bin/sleep", "100000"])
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            url = pod.cri.call("Exec", container_id=cid, cmd=["true"], stdout=True).url
            c, _ = sc.spdy_connect(url, V4)
            ids = sc.exec_streams(c, stdout=True, stderr=False)
            c.read_until(lambda: ids["error"] in c.fin)
            c.close()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        rss = exec_monitor_rss(pod, cid)
        for ctr in pod.list():
            pod.remove(ctr.id)
        for p in env.list():
            env.remove(p.id)
        return statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)], rss
    finally:
        if env is not None:
            env.cri.close()
            env.daemon.stop()
            env.cleanup()
            subprocess.run(["rm", "-rf", env.base])
        reg.stop()
        rmtree(rbase)


def exec_monitor_rss(pod, cid):
    """VmRSS of the monitor of a running interactive exec (`sleep`): the
    exec'd process's parent (the monitor is its subreaper)."""
    marker = b"/bin/sleep\x00777\x00"
    url = pod.cri.call("Exec", container_id=cid, cmd=["/bin/sleep", "777"], stdout=True).url
    c, _ = sc.spdy_connect(url, V4)
    sc.exec_streams(c, stdout=True, stderr=False)
    try:
        for _ in range(100):
            for p in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open("/proc/%s/cmdline" % p, "rb") as f:
                        if f.read() != marker:
                            continue
                    with open("/proc/%s/status" % p) as f:
                        ppid = next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
                    with open("/proc/%d/cmdline" % ppid, "rb") as f:
                        assert b"cricket-conmon" in f.read()
                    return rss_kb(ppid)
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("exec'd sleep not found")
    finally:
        c.close()


def portforward_mbps(cri, base, size=100 << 20):
    ns = "crkt-bench-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    www = os.path.join(base, "www")
    os.makedirs(www)
    with open(os.path.join(www, "big"), "wb") as f:
        f.write(os.urandom(size))
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "/bin/busybox", "httpd", "-f", "-p",
                            "8080", "-h", www])
    try:
        time.sleep(0.5)
        url = cri.call("PortForward", pod_sandbox_id="fakens-" + ns).url
        c, _ = sc.spdy_connect(url, ["portforward.k8s.io"])
        c.keep_data = False
        hdr = [("port", "8080"), ("requestid", "0")]
        c.open_stream([("streamtype", "error")] + hdr)
        dsid = c.open_stream([("streamtype", "data")] + hdr)
        t0 = time.perf_counter()
        c.send_data(dsid, b"GET /big HTTP/1.0\r\n\r\n", fin=True)
        got = 0
        while dsid not in c.fin:
            kind, sid, _, payload = c.read_frame()
            if kind == "data" and sid == dsid:
                got += len(payload)
        dt = time.perf_counter() - t0
        c.close()
        return got / dt / 1e6, got
    finally:
        srv.kill()
        srv.wait()
        subprocess.run(["ip", "netns", "del", ns])


def stalled_rss(cri, pid, size=100 << 20):
    url = cri.call("Exec", container_id="fake-b", cmd=["big", str(size)], stdout=True).url
    c, _ = sc.spdy_connect(url, V4)
    sc.exec_streams(c, stdout=True, stderr=False)
    before = rss_kb(pid)
    time.sleep(3)
    grown = rss_kb(pid) - before
    c.close()
    return grown


def main():
    base = tempfile.mkdtemp(prefix="cricket-sbench-")
    d = conftest.Daemon(base, env={"CRICKET_TEST_HOOK_STREAMING": "fake"}).start()
    cri = conftest.Cri(d.socket)
    try:
        med, p99 = exec_round_trips(cri)
        print("exec round trip over SPDY (fake backend): median %.2f ms, p99 %.2f ms" %
              (med, p99))
        mbps, n = portforward_mbps(cri, base)
        print("port-forward over SPDY: %d bytes at %.0f MB/s" % (n, mbps))
        print("daemon RSS growth, 100 MB unread by a stalled client: %d kB" %
              stalled_rss(cri, d.proc.pid))
    finally:
        cri.close()
        d.stop()
        subprocess.run(["rm", "-rf", base])
    med2, p992, rss = real_exec_figures()
    print("exec round trip over SPDY: fake backend median %.2f ms p99 %.2f ms | real container "
          "(`true`, 30 runs) median %.2f ms p99 %.2f ms" % (med, p99, med2, p992))
    print("monitor VmRSS in interactive exec mode: %d kB" % rss)


if __name__ == "__main__":
    main()
