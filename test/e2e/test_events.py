"""GetContainerEvents end to end (what kubelet's EventedPLEG reads): the real
daemon, runc, monitors and CNI. Every subscriber gets CREATED, STARTED,
STOPPED and DELETED for every container and for the pod itself (container_id
= the pod id, as containerd sends them), each carrying the pod's status and
its containers' statuses at that moment. A subscriber that falls too far
behind is ended with RESOURCE_EXHAUSTED; a daemon stop ends every stream
with UNAVAILABLE and a new subscription on the next daemon goes on."""
import queue
import threading
import time

import grpc
import pytest

import api_pb2
from registry import registry_config
from test_container import Pod, reg  # noqa: F401 (fixture)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)

CREATED, STARTED, STOPPED, DELETED = (api_pb2.CONTAINER_CREATED_EVENT,
                                      api_pb2.CONTAINER_STARTED_EVENT,
                                      api_pb2.CONTAINER_STOPPED_EVENT,
                                      api_pb2.CONTAINER_DELETED_EVENT)
PATH = "/runtime.v1.RuntimeService/GetContainerEvents"
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


class Sub:
    """One GetContainerEvents stream, read by a thread into a queue (or not
    read at all: reader=False). Construction returns once the daemon has
    subscribed it (the initial metadata arrived)."""

    def __init__(self, socket, reader=True, options=()):
        self.channel = grpc.insecure_channel("unix://" + socket, options=list(options))
        fn = self.channel.unary_stream(
            PATH, request_serializer=api_pb2.GetEventsRequest.SerializeToString,
            response_deserializer=api_pb2.ContainerEventResponse.FromString)
        self.call = fn(api_pb2.GetEventsRequest(), timeout=600)
        self.call.initial_metadata()
        self.q = queue.Queue()
        self.error = None
        self.thread = None
        if reader:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        try:
            for ev in self.call:
                self.q.put(ev)
        except grpc.RpcError as e:
            self.error = e
        self.q.put(None)

    def until(self, pred, timeout=60):
        """Events read until one matches pred (it included); fails on the
        stream's end or a timeout."""
        seen = []
        while True:
            try:
                ev = self.q.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("no matching event in %ds; saw %s" % (timeout, brief(seen)))
            assert ev is not None, "stream ended (%s); saw %s" % (self.error, brief(seen))
            seen.append(ev)
            if pred(ev):
                return seen

    def end(self, timeout=60):
        """The status the stream ended with (every event before it dropped)."""
        while True:
            ev = self.q.get(timeout=timeout)
            if ev is None:
                return self.error

    def close(self):
        self.call.cancel()
        self.channel.close()
        if self.thread:
            self.thread.join(10)


def brief(evs):
    return [(api_pb2.ContainerEventType.Name(e.container_event_type), e.container_id[:12])
            for e in evs]


def is_ev(cid, typ):
    return lambda e: e.container_id == cid and e.container_event_type == typ


def statuses(ev):
    return {s.id: s for s in ev.containers_statuses}


@pytest.fixture
def pod(envf, reg):  # noqa: F811
    env = envf(extra_config=registry_config(reg.host) + "events:\n  queue_length: 8\n")
    p = Pod(env, reg)
    yield p
    if env.daemon.proc is not None and env.daemon.proc.poll() is None:
        for c in p.list():
            p.remove(c.id)


def test_events_whole_pod_life(envf, reg):  # noqa: F811
    env = envf(extra_config=registry_config(reg.host))
    subs = [Sub(env.daemon.socket), Sub(env.daemon.socket)]
    try:
        p = Pod(env, reg)  # pulls and runs the pod
        for s in subs:
            evs = s.until(is_ev(p.id, STARTED))
            created = [e for e in evs if is_ev(p.id, CREATED)(e)]
            assert len(created) == 1 and evs[-1].pod_sandbox_status.state == api_pb2.SANDBOX_READY
            assert evs[-1].pod_sandbox_status.metadata.uid == "uid-p"
            assert created[0].created_at <= evs[-1].created_at

        cid = p.create("c", command=SLEEP)
        p.start(cid)
        quick = p.run("quick", command=["sh", "-c", "exit 3"])
        p.stop(cid, timeout=10)
        p.wait_exit(quick)
        p.remove(cid)
        for s in subs:
            evs = s.until(is_ev(cid, CREATED))
            st = statuses(evs[-1])
            assert st[cid].state == api_pb2.CONTAINER_CREATED
            assert evs[-1].pod_sandbox_status.id == p.id
            ev = s.until(is_ev(cid, STARTED))[-1]
            assert statuses(ev)[cid].state == api_pb2.CONTAINER_RUNNING
            # the container that exits by itself: STOPPED from the exit watcher
            rest = s.until(is_ev(quick, STOPPED))
            q = statuses(rest[-1])[quick]
            assert q.state == api_pb2.CONTAINER_EXITED and q.exit_code == 3
            evs = rest if any(is_ev(cid, STOPPED)(e) for e in rest) else \
                rest + s.until(is_ev(cid, STOPPED))
            stopped = [e for e in evs if is_ev(cid, STOPPED)(e)][0]
            assert statuses(stopped)[cid].state == api_pb2.CONTAINER_EXITED
            deleted = s.until(is_ev(cid, DELETED))[-1]
            assert cid not in statuses(deleted) and quick in statuses(deleted)
            assert deleted.pod_sandbox_status.state == api_pb2.SANDBOX_READY

        env.stop(p.id)
        env.remove(p.id)
        for s in subs:
            evs = s.until(is_ev(p.id, DELETED))
            kinds = [e.container_event_type for e in evs if e.container_id == p.id]
            assert STOPPED in kinds, brief(evs)
            # the pod's DELETED still carries its last status (kubelet skips
            # an event without one)
            assert evs[-1].pod_sandbox_status.id == p.id
            assert evs[-1].pod_sandbox_status.state == api_pb2.SANDBOX_NOTREADY
            assert len(evs[-1].containers_statuses) == 0
            # the quick container went with the pod: its DELETED came first
            assert any(is_ev(quick, DELETED)(e) for e in evs), brief(evs)
    finally:
        for s in subs:
            s.close()


def test_events_many_subscribers(pod):
    """20 subscribers, and containers that exit at once: the exit watcher
    can see such an exit before StartContainer publishes STARTED, and
    STARTED must still come first (kubelet's EventedPLEG drops an event
    older than what it has)."""
    subs = [Sub(pod.env.daemon.socket) for _ in range(20)]
    try:
        cids = []
        for i in range(8):
            cid = pod.run("c%d" % i, command=["true"])
            pod.wait_exit(cid)
            pod.remove(cid)
            cids.append(cid)
        for s in subs:
            evs = s.until(is_ev(cids[-1], DELETED))
            for cid in cids:
                mine = [e for e in evs if e.container_id == cid]
                kinds = [e.container_event_type for e in mine]
                assert kinds == [CREATED, STARTED, STOPPED, DELETED], brief(evs)
                at = [e.created_at for e in mine]
                assert at == sorted(at), brief(mine)
    finally:
        for s in subs:
            s.close()


def test_events_slow_subscriber_is_ended_and_others_go_on(pod):
    # a client that never reads, with a small HTTP/2 window, so the daemon's
    # sends stall and the subscriber's queue (8 events here) fills
    slow = Sub(pod.env.daemon.socket, reader=False,
               options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024),
                        ("grpc.max_receive_message_length", 16 << 20)])
    fast = Sub(pod.env.daemon.socket)
    try:
        last = None
        for i in range(12):
            last = pod.create("c%d" % i, command=["true"])
            pod.remove(last)
        fast.until(is_ev(last, DELETED))
        # the slow one now reads: what was queued, then the end
        got = []
        with pytest.raises(grpc.RpcError) as e:
            for ev in slow.call:
                got.append(ev)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value
        assert "fell behind" in e.value.details() and "queue of 8 events" in e.value.details()
        assert len(got) < 24
        # a new subscription works
        again = Sub(pod.env.daemon.socket)
        cid = pod.create("after", command=["true"])
        again.until(is_ev(cid, CREATED))
        fast.until(is_ev(cid, CREATED))
        pod.remove(cid)
        again.close()
    finally:
        slow.close()
        fast.close()


def test_events_across_daemon_restart(pod):
    env = pod.env
    s = Sub(env.daemon.socket)
    try:
        cid = pod.create("c", command=SLEEP)
        s.until(is_ev(cid, CREATED))
        env.restart()
        # the stream ends cleanly with UNAVAILABLE: the client subscribes again
        err = s.end()
        assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE, err
        assert "shutting down" in err.details()
        s.close()
        s = Sub(env.daemon.socket)
        pod.cri = env.cri
        pod.start(cid)
        ev = s.until(is_ev(cid, STARTED))[-1]
        assert statuses(ev)[cid].state == api_pb2.CONTAINER_RUNNING
        pod.stop(cid, timeout=5)
        s.until(is_ev(cid, STOPPED))
        pod.remove(cid)
        s.until(is_ev(cid, DELETED))
    finally:
        s.close()


def test_events_stream_ends_when_client_cancels(pod):
    s = Sub(pod.env.daemon.socket)
    s.close()
    # the daemon dropped the subscriber: later events go nowhere and nothing
    # piles up; a fresh subscriber still gets everything
    s2 = Sub(pod.env.daemon.socket)
    try:
        cid = pod.create("c", command=["true"])
        s2.until(is_ev(cid, CREATED))
        pod.remove(cid)
        s2.until(is_ev(cid, DELETED))
    finally:
        s2.close()


def test_events_cancelled_mid_stream_are_dropped(envf, reg):  # noqa: F811
    # clients that go away while events flow to them: the daemon lets go of
    # every subscription (the metrics endpoint counts them) and serves on
    from test_metrics_endpoint import METRICS_ON, scrape, value
    env = envf(extra_config=registry_config(reg.host) + METRICS_ON)
    p = Pod(env, reg)
    subs = [Sub(env.daemon.socket, reader=(i % 2 == 0)) for i in range(6)]
    assert value(scrape(env), "cricket_event_subscribers") == 6
    cids = []
    for i in range(4):
        cids.append(p.create("c%d" % i, command=["true"]))
        if i == 1:
            for s in subs:
                s.close()
    for c in cids:
        p.remove(c)
    deadline = time.monotonic() + 30
    while value(scrape(env), "cricket_event_subscribers") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value(scrape(env), "cricket_event_subscribers") == 0
    s = Sub(env.daemon.socket)
    try:
        cid = p.create("after", command=["true"])
        s.until(is_ev(cid, CREATED))
        p.remove(cid)
    finally:
        s.close()
