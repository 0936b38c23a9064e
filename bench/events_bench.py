#!/usr/bin/python3
"""GetContainerEvents figures through the CRI socket, as kubelet's
EventedPLEG sees them.

    bench/events_bench.py [BUILD_DIR] [-n RUNS] [-s SUBSCRIBERS]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
a registry on 127.0.0.1 (the test/e2e helpers), runs one pod, then RUNS
containers running `true`, and prints:
- exit to STOPPED: the time from a container's exit (finished_at, which the
  monitor records when it reaps the process) to the STOPPED event arriving
  at a subscriber, median and p90, with 1 subscriber and with SUBSCRIBERS
  (pooled over all of them);
- CreateContainer and StartContainer round trips with no subscriber and
  with SUBSCRIBERS, median and p90 (what publishing costs the RPC that
  causes the event). The subscribers read in a child process, so their
  Python threads do not slow the bench's own client.
Needs root, runc, busybox-static, containernetworking-plugins and Debian's
docker-registry. Cleans up like the other benches and reports leaks."""
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time

from benchlib import build_dir, opt, pct, report_leaks, use_build

BUILD = build_dir("/tmp/build-ctr")
RUNS, SUBS = opt("-n", 30), opt("-s", 20)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402
from test_events import Sub  # noqa: E402


def line(name, values):
    print("%-48s median %7.2f ms   p90 %7.2f ms   (n=%d)" % (
        name, pct(values, 50), pct(values, 90), len(values)))


class Watch:
    """A subscriber recording, for every STOPPED event, arrival - finished_at."""

    def __init__(self, socket):
        self.sub = Sub(socket, reader=False)
        self.lat = {}
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            for ev in self.sub.call:
                now = time.time_ns()
                if ev.container_event_type != api_pb2.CONTAINER_STOPPED_EVENT:
                    continue
                for st in ev.containers_statuses:
                    if st.id == ev.container_id:
                        self.lat[ev.container_id] = (now - st.finished_at) / 1e6
        except Exception:  # noqa: BLE001 (the stream ends when we cancel it)
            pass

    def close(self):
        self.sub.close()


def watcher_main(socket, n, conn):
    """In its own process (so the readers never hold the bench client's
    GIL): n subscribers; says "ready", waits for the container ids, sends
    back every subscriber's latencies for them."""
    watches = [Watch(socket) for _ in range(n)]
    conn.send("ready")
    cids = conn.recv()
    try:
        wait_for(watches, cids)
        conn.send([[w.lat[c] for c in cids] for w in watches])
    except AssertionError as e:
        conn.send(str(e))
    for w in watches:
        w.close()


class Watchers:
    """n subscribers in a child process."""

    def __init__(self, socket, n):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=watcher_main, args=(socket, n, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(60) or self.conn.recv() != "ready":
            raise AssertionError("subscribers did not start")

    def latencies(self, cids):
        self.conn.send(cids)
        if not self.conn.poll(120):
            raise AssertionError("no latencies from the subscribers")
        res = self.conn.recv()
        self.proc.join(30)
        if isinstance(res, str):
            raise AssertionError(res)
        return [v for per_sub in res for v in per_sub]


def round_trips(env, cfg, pod, n, tag):
    """(create ms, start ms, container ids) of n containers running `true`."""
    create, start, cids = [], [], []
    for i in range(n):
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="%s%d" % (tag, i)),
            image=api_pb2.ImageSpec(image="busybox"), command=["/bin/true"])
        t0 = time.perf_counter()
        cid = env.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                           sandbox_config=cfg).container_id
        t1 = time.perf_counter()
        env.cri.call("StartContainer", timeout=60, container_id=cid)
        t2 = time.perf_counter()
        create.append((t1 - t0) * 1e3)
        start.append((t2 - t1) * 1e3)
        cids.append(cid)
        time.sleep(0.05)  # one exit at a time: the figure is latency, not backlog
    return create, start, cids


def wait_for(watches, cids, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if all(c in w.lat for w in watches for c in cids):
            return
        time.sleep(0.05)
    raise AssertionError("STOPPED events missing")


def remove_all(env):
    for c in env.cri.call("ListContainers").containers:
        env.cri.call("RemoveContainer", timeout=60, container_id=c.id)


def bench(reg):
    env, base = None, tempfile.mkdtemp(prefix="ev-bench-", dir="/tmp")
    try:
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.daemon.extra_args = ["--log-level", "info"]
        env.start()
        env.cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
        cfg = env.config("ev")
        pod = env.run(cfg)
        round_trips(env, cfg, pod, 3, "warm")
        remove_all(env)

        c0, s0, _ = round_trips(env, cfg, pod, RUNS, "none")
        remove_all(env)
        one = Watchers(env.daemon.socket, 1)
        _, _, cids = round_trips(env, cfg, pod, RUNS, "one")
        lat_one = one.latencies(cids)
        remove_all(env)
        many = Watchers(env.daemon.socket, SUBS)
        cn, sn, cids = round_trips(env, cfg, pod, RUNS, "many")
        lat_many = many.latencies(cids)
        remove_all(env)

        print("cricketd %s, busybox `true` containers in one pod, runc" % BUILD)
        line("exit -> STOPPED event, 1 subscriber", lat_one)
        line("exit -> STOPPED event, %d subscribers" % SUBS, lat_many)
        line("CreateContainer, no subscriber", c0)
        line("CreateContainer, %d subscribers" % SUBS, cn)
        line("StartContainer, no subscriber", s0)
        line("StartContainer, %d subscribers" % SUBS, sn)
        env.remove(pod)
        return report_leaks(env)
    finally:
        if env is not None:
            try:
                if env.cri and env.daemon.proc is not None and env.daemon.proc.poll() is None:
                    remove_all(env)
                    for p in env.list():
                        env.remove(p.id)
            except Exception as e:  # noqa: BLE001 (cleanup below still runs)
                print("cleanup through the CRI failed: %s" % e, file=sys.stderr)
            env.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def main():
    with busybox_registry("cricket-evbench-reg-") as reg:
        return bench(reg)


if __name__ == "__main__":
    sys.exit(main())
