"""Shared fixtures: a real cricketd on a temporary root, runroot and socket,
and a CRI client that speaks to it the way crictl does (gRPC over a unix
socket, one channel, 16 MiB message limits)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.environ.get("CRI_PY_GEN", ""))
import grpc  # noqa: E402
import api_pb2  # noqa: E402

CRICKETD = os.environ.get("CRICKETD", "")
# cricketd-test: the same daemon with test hooks compiled in (the shipped
# cricketd reads no CRICKET_TEST_* variable). Beside cricketd by default.
CRICKETD_TEST = os.environ.get("CRICKETD_TEST") or (
    os.path.join(os.path.dirname(CRICKETD), "cricketd-test") if CRICKETD else "")
# An ASan/UBSan build: freed memory sits in ASan's quarantine and every
# allocation has shadow memory, so RSS bounds say nothing there (they are
# checked in the plain build).
SANITIZED = os.environ.get("CRICKET_SANITIZE") == "1"
RSS_SKIP = pytest.mark.skipif(SANITIZED, reason="RSS bounds are checked in the plain build; "
                              "ASan keeps freed memory in quarantine")
TEST_HOOK_PREFIXES = ("CRICKET_TEST_HOOK_", "CRICKET_FAILPOINT")


def needs_test_build(env):
    """True when env asks for a hook only cricketd-test has."""
    return any(k.startswith(TEST_HOOK_PREFIXES) for k in (env or {}))
RUNTIME = "/runtime.v1.RuntimeService/"
IMAGE = "/runtime.v1.ImageService/"

METHODS = {
    m.full_name.split(".")[-1]: (svc.full_name, m)
    for svc in api_pb2.DESCRIPTOR.services_by_name.values()
    for m in svc.methods
}


def message_class(desc):
    return getattr(api_pb2, desc.name)


class Cri:
    """A thin CRI client: cri.call("Version", version="0.1.0")."""

    def __init__(self, socket):
        self.socket = socket
        self.channel = grpc.insecure_channel(
            "unix://" + socket,
            options=[("grpc.max_receive_message_length", 16 << 20),
                     ("grpc.max_send_message_length", -1)])

    def path(self, name):
        svc, _ = METHODS[name]
        return "/%s/%s" % (svc, name)

    def stub(self, name):
        _, m = METHODS[name]
        req_cls = message_class(m.input_type)
        resp_cls = message_class(m.output_type)
        if m.server_streaming:
            return self.channel.unary_stream(
                self.path(name), request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString), req_cls
        return self.channel.unary_unary(
            self.path(name), request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString), req_cls

    def call(self, name, timeout=30, **fields):
        fn, req_cls = self.stub(name)
        return fn(req_cls(**fields), timeout=timeout)

    def future(self, name, timeout=60, **fields):
        fn, req_cls = self.stub(name)
        return fn.future(req_cls(**fields), timeout=timeout)

    def raw(self, path, payload, timeout=10):
        fn = self.channel.unary_unary(path, request_serializer=None,
                                      response_deserializer=None)
        return fn(payload, timeout=timeout)

    def close(self):
        self.channel.close()


def image_spec(ref):
    return api_pb2.ImageSpec(image=ref)


def pull(cri, ref, timeout=120, **kw):
    """PullImage of ref; its image_ref."""
    return cri.call("PullImage", timeout=timeout, image=image_spec(ref), **kw).image_ref


def listed(cri):
    """ListImages' images."""
    return list(cri.call("ListImages").images)


class Daemon:
    """One cricketd process on its own directories."""

    def __init__(self, base, config_text="", extra_args=(), env=None):
        self.base = base
        self.root = os.path.join(base, "root")
        self.runroot = os.path.join(base, "run")
        self.socket = os.path.join(base, "cricket.sock")
        self.cni_dir = os.path.join(base, "net.d")
        os.makedirs(self.cni_dir, exist_ok=True)
        self.config = os.path.join(base, "cricket.yaml")
        with open(self.config, "w") as f:
            f.write("listen: unix://%s\nroot: %s\nrunroot: %s\nlog_level: debug\n"
                    "network:\n  conf_dir: %s\n" % (self.socket, self.root, self.runroot,
                                                   self.cni_dir))
            f.write(config_text)
        self.log_path = os.path.join(base, "cricketd.log")
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.binary = CRICKETD_TEST if needs_test_build(env) else CRICKETD
        self.proc = None
        self.log = None

    def argv(self):
        return [self.binary, "--config", self.config] + self.extra_args

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("cricketd exited with %d:\n%s" %
                                     (self.proc.returncode, self.logs()))
            if os.path.exists(self.socket):
                cri = Cri(self.socket)
                try:
                    cri.call("Version", timeout=2, version="0.1.0")
                    return
                except grpc.RpcError:
                    pass
                finally:
                    cri.close()
            time.sleep(0.05)
        raise AssertionError("cricketd not ready in %ds:\n%s" % (timeout, self.logs()))

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the daemon and returns its exit code (SIGKILL past timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("cricketd ignored signal %d for %ds" % (sig, timeout))
        finally:
            if self.log:
                self.log.close()


def run_cricketd(args, timeout=30):
    """Runs cricketd to completion (for commands and startup failures)."""
    return subprocess.run([CRICKETD] + list(args), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def tmpbase():
    base = tempfile.mkdtemp(prefix="cricket-e2e-")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def daemon_factory(tmpbase):
    made = []

    def make(config_text="", extra_args=(), env=None, start=True, sub=None):
        base = os.path.join(tmpbase, sub) if sub else tmpbase
        os.makedirs(base, exist_ok=True)
        d = Daemon(base, config_text, extra_args, env)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            d.stop(signal.SIGKILL)


@pytest.fixture
def daemon(daemon_factory):
    d = daemon_factory()
    yield d
    rc = d.stop()
    assert rc == 0, "cricketd exited with %s:\n%s" % (rc, d.logs())


@pytest.fixture
def cri(daemon):
    c = Cri(daemon.socket)
    yield c
    c.close()
