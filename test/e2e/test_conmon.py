"""cricket-conmon end to end: real runc, real busybox bundles, driven through
conmonctl (the conmon client library on the command line, as cricketd uses
it). Needs root, runc and busybox-static; skips otherwise."""
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import bundle

CONMON = os.environ.get("CRICKET_CONMON", "")
CONMONCTL = os.environ.get("CONMONCTL", "")

ok, why = bundle.have_prereqs()
pytestmark = pytest.mark.skipif(not ok or not CONMON or not CONMONCTL,
                                reason=why or "CRICKET_CONMON/CONMONCTL not set")

RECORD = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$",
                    re.S)


def parse_log(data):
    """CRI log bytes -> [(stream, tag, content)], content as kubelet reads it
    (P: without the record's newline; F: the whole line, newline included)."""
    out = []
    for rec in data.split(b"\n")[:-1]:
        m = RECORD.match(rec + b"\n")
        assert m, "bad log record %r" % rec[:200]
        stream, tag, body = m.group(2).decode(), m.group(3).decode(), m.group(4)
        out.append((stream, tag, body[:-1] if tag == "P" else body))
    assert data == b"" or data.endswith(b"\n")
    return out


def joined(records, stream):
    return b"".join(c for s, _, c in records if s == stream)


class Env:
    """A private runc root, exit and socket dirs under one temp dir, plus
    everything the test started, cleaned up whatever happens."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cc-", dir="/tmp")
        self.root = os.path.join(self.dir, "runc")
        self.exits = os.path.join(self.dir, "exits")
        self.socks = os.path.join(self.dir, "s")
        self.rootfs = os.path.join(self.dir, "rootfs")
        bundle.make_rootfs(self.rootfs)
        self.ids = []
        self.monitors = []
        self.procs = []
        self.n = 0

    def new_id(self):
        self.n += 1
        cid = "cc%d-%d-%d" % (os.getpid(), self.n, int(time.time() * 1000) % 100000)
        self.ids.append(cid)
        return cid

    def base_args(self):
        return ["--monitor", CONMON, "--runtime", bundle.RUNC, "--runtime-arg", "--root",
                "--runtime-arg", self.root, "--monitor-log", os.environ.get("CONMON_TEST_MONITOR_LOG", os.path.join(self.dir, "mon.log"))]

    def bundle(self, cid, args, **kw):
        return bundle.make_bundle(os.path.join(self.dir, "b-" + cid), args,
                                  rootfs=self.rootfs, cgroups_path="/cricket-test-" + cid, **kw)

    def create(self, cid, bdir, log=True, extra=(), runtime_args=(), hold=False):
        cmd = [CONMONCTL, "create"] + self.base_args()
        for a in runtime_args:
            cmd += ["--runtime-arg", a]
        cmd += ["--exit-dir", self.exits, "--socket-dir", self.socks, "--id", cid,
                "--bundle", bdir] + list(extra)
        if log:
            cmd += ["--log-path", self.log_path(cid)]
        if hold:
            cmd.append("--hold")
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
            self.procs.append(p)
            res = json.loads(p.stdout.readline())
        else:
            res = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, check=False,
                                            timeout=60).stdout)
        if "monitor_pid" in res:
            self.monitors.append(res["monitor_pid"])
        return (res, p) if hold else res

    def log_path(self, cid):
        return os.path.join(self.dir, cid + ".log")

    def runc(self, *args, check=True):
        return subprocess.run([bundle.RUNC, "--root", self.root] + list(args), check=check,
                              capture_output=True, timeout=60)

    def exec(self, cid, args, timeout=0, cap=0):
        pj = bundle.process_json(os.path.join(self.dir, "p-%s-%d.json" % (cid, time.time_ns())),
                                 args)
        cmd = [CONMONCTL, "exec"] + self.base_args() + ["--id", cid, "--process", pj,
                                                          "--timeout", str(timeout)]
        if cap:
            cmd += ["--cap", str(cap)]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=120).stdout
        line, _, rest = out.partition(b"\n")
        res = json.loads(line)
        if "stdout_len" in res:
            res["stdout"] = rest[:res["stdout_len"]]
            res["stderr"] = rest[res["stdout_len"]:]
        return res

    def wait_exit(self, cid, timeout=30):
        path = os.path.join(self.exits, cid)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                out = subprocess.run([CONMONCTL, "exit", "--path", path], check=True,
                                     stdout=subprocess.PIPE).stdout
                return json.loads(out)
            time.sleep(0.02)
        raise AssertionError("no exit file for %s" % cid)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for cid in self.ids:
            bundle.runc_delete(self.root, cid)
        for pid in self.monitors:  # only monitors this test started
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"cricket-conmon" in f.read():
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def env():
    e = Env()
    try:
        yield e
    finally:
        e.cleanup()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_log_format_and_exit_0(env):
    cid = env.new_id()
    script = ("echo hello; head -c 102400 /dev/zero | tr '\\0' x; echo; echo oops >&2; "
              "echo; printf tail")
    b = env.bundle(cid, ["sh", "-c", script])
    res = env.create(cid, b)
    assert res["pid"] > 0, res
    env.runc("start", cid)
    ex = env.wait_exit(cid)
    assert ex["exit_code"] == 0 and ex["signal"] == 0 and not ex["oom_killed"]
    assert ex["pid"] == res["pid"]
    assert abs(ex["finished_at"] - time.time_ns()) < 60 * 10**9
    with open(env.log_path(cid), "rb") as f:
        recs = parse_log(f.read())
    want = b"hello\n" + b"x" * 102400 + b"\n\n" + b"tail"
    assert joined(recs, "stdout") == want
    assert joined(recs, "stderr") == b"oops\n"
    out = [r for r in recs if r[0] == "stdout"]
    assert out[0] == ("stdout", "F", b"hello\n")
    # the 100 KiB line: P pieces of at most one read buffer, then one F
    big = out[1:-2]
    assert len(big) >= 13 and all(t == "P" for _, t, _ in big[:-1]) and big[-1][1] == "F"
    assert all(len(c) <= 8192 for _, _, c in big)
    assert out[-2] == ("stdout", "F", b"\n")  # an empty line
    assert out[-1] == ("stdout", "P", b"tail")  # no final newline: stays P
    # the monitor is gone and cleaned its socket dir
    assert not os.path.exists(os.path.join(env.socks, cid))


def test_exit_code_1(env):
    cid = env.new_id()
    env.create(cid, env.bundle(cid, ["sh", "-c", "exit 1"]))
    env.runc("start", cid)
    ex = env.wait_exit(cid)
    assert (ex["exit_code"], ex["signal"], ex["oom_killed"]) == (1, 0, False)


def test_exit_code_137_on_sigkill(env):
    cid = env.new_id()
    env.create(cid, env.bundle(cid, ["sleep", "100"]))
    env.runc("start", cid)
    env.runc("kill", cid, "KILL")
    ex = env.wait_exit(cid)
    assert (ex["exit_code"], ex["signal"], ex["oom_killed"]) == (137, 9, False)


def test_oom_kill_recorded(env):
    cid = env.new_id()
    b = env.bundle(cid, ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                   memory_limit=16 << 20)
    env.create(cid, b)
    env.runc("start", cid)
    ex = env.wait_exit(cid)
    assert ex["oom_killed"], ex
    assert ex["exit_code"] == 137 and ex["signal"] == 9


def test_monitor_survives_sigkill_of_its_starter(env):
    cid = env.new_id()
    b = env.bundle(cid, ["sh", "-c", "sleep 1; echo done; exit 7"])
    res, starter = env.create(cid, b, hold=True)
    mon = res["monitor_pid"]
    with open("/proc/%d/stat" % mon) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[1]) != starter.pid  # never the starter's child
    assert int(fields[3]) != os.getsid(starter.pid)  # its own session
    starter.kill()
    starter.wait()
    assert alive(mon) and alive(res["pid"])
    env.runc("start", cid)
    ex = env.wait_exit(cid)
    assert ex["exit_code"] == 7
    with open(env.log_path(cid), "rb") as f:
        assert joined(parse_log(f.read()), "stdout") == b"done\n"


def test_log_reopen_after_rename(env):
    cid = env.new_id()
    script = "i=0; while [ $i -lt 150 ]; do echo line-$i; i=$((i+1)); usleep 10000; done"
    env.create(cid, env.bundle(cid, ["sh", "-c", script]))
    log = env.log_path(cid)
    env.runc("start", cid)
    time.sleep(0.5)
    os.rename(log, log + ".1")
    out = subprocess.run([CONMONCTL, "reopen", "--socket-dir", env.socks, "--id", cid],
                         stdout=subprocess.PIPE, check=True).stdout
    assert json.loads(out) == {"ok": True}
    assert os.path.exists(log)  # exists before the reply came back
    env.wait_exit(cid)
    with open(log + ".1", "rb") as f:
        old = joined(parse_log(f.read()), "stdout")
    with open(log, "rb") as f:
        new = joined(parse_log(f.read()), "stdout")
    assert old and new
    assert old + new == b"".join(b"line-%d\n" % i for i in range(150))
    # not running any more: reopen is refused
    r = subprocess.run([CONMONCTL, "reopen", "--socket-dir", env.socks, "--id", cid],
                       stdout=subprocess.PIPE)
    assert r.returncode == 1 and json.loads(r.stdout)["errno"] == 3  # ESRCH


def attach(env, cid):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(os.path.join(env.socks, cid, "attach"))
    s.settimeout(10)
    return s


def read_until(s, want, streams):
    """Reads attach packets into streams {1: b"", 2: b""} until want(streams)."""
    while not want(streams):
        pkt = s.recv(65536)
        if not pkt:
            return False
        streams[pkt[0]] = streams.get(pkt[0], b"") + pkt[1:]
    return True


def test_attach_output_and_stdin(env):
    cid = env.new_id()
    script = "echo ready; while read l; do echo got:$l; echo err:$l >&2; done; echo bye"
    env.create(cid, env.bundle(cid, ["sh", "-c", script]), extra=["--stdin", "--stdin-once"])
    s = attach(env, cid)
    try:
        env.runc("start", cid)
        st = {1: b"", 2: b""}
        assert read_until(s, lambda x: b"ready\n" in x[1], st)
        s.send(b"abc\n")
        assert read_until(s, lambda x: b"got:abc\n" in x[1] and b"err:abc\n" in x[2], st)
        s.shutdown(socket.SHUT_WR)  # stdin_once: the container's stdin closes
        read_until(s, lambda x: False, st)  # until the monitor closes us
        assert st[1] == b"ready\ngot:abc\nbye\n" and st[2] == b"err:abc\n"
    finally:
        s.close()
    assert env.wait_exit(cid)["exit_code"] == 0
    with open(env.log_path(cid), "rb") as f:
        recs = parse_log(f.read())
    assert joined(recs, "stdout") == b"ready\ngot:abc\nbye\n"


def test_terminal_resize_and_input(env):
    cid = env.new_id()
    b = env.bundle(cid, ["sh", "-c", "read l; stty size; echo got:$l"], terminal=True)
    res = env.create(cid, b, extra=["--terminal", "--stdin"])
    assert res.get("pid"), res
    out = subprocess.run([CONMONCTL, "resize", "--socket-dir", env.socks, "--id", cid,
                          "--width", "100", "--height", "40"], stdout=subprocess.PIPE)
    assert json.loads(out.stdout) == {"ok": True}
    s = attach(env, cid)
    try:
        env.runc("start", cid)
        s.send(b"hi\n")
        st = {1: b""}
        assert read_until(s, lambda x: b"got:hi" in x[1], st)
        assert 2 not in st  # a pty has one stream
    finally:
        s.close()
    assert env.wait_exit(cid)["exit_code"] == 0
    with open(env.log_path(cid), "rb") as f:
        recs = parse_log(f.read())
    assert all(r[0] == "stdout" for r in recs)
    assert b"40 100\r\n" in joined(recs, "stdout")



def test_resize_errors_come_back_with_their_errno(env):
    # the monitor answers "error <errno> <text>"; the client turns it into that errno
    cid = env.new_id()
    env.create(cid, env.bundle(cid, ["sleep", "100"]))

    def resize(w, h):
        out = subprocess.run([CONMONCTL, "resize", "--socket-dir", env.socks, "--id", cid,
                              "--width", str(w), "--height", str(h)], stdout=subprocess.PIPE)
        return json.loads(out.stdout)

    r = resize(70000, 40)  # more than a winsize holds
    assert r["errno"] == errno.EINVAL and "usage: resize" in r["error"], r
    r = resize(100, 40)  # a valid size, but no terminal
    assert r["errno"] == errno.ENOTTY and "container has no terminal" in r["error"], r
    env.runc("kill", cid, "KILL")

def test_exec_sync(env):
    cid = env.new_id()
    env.create(cid, env.bundle(cid, ["sleep", "100"]))
    env.runc("start", cid)
    r = env.exec(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (r["exit_code"], r["timed_out"], r["stdout"], r["stderr"]) == (3, False, b"out\n",
                                                                           b"err\n")
    r = env.exec(cid, ["printf", "hello"])
    assert (r["exit_code"], r["stdout"], r["stderr"]) == (0, b"hello", b"")
    r = env.exec(cid, ["sh", "-c", "head -c 100000 /dev/zero"], cap=1000)
    assert r["exit_code"] == 0 and r["stdout"] == b"\0" * 1000


def test_exec_timeout_kills_process(env):
    cid = env.new_id()
    env.create(cid, env.bundle(cid, ["sleep", "100"]))
    env.runc("start", cid)
    t0 = time.time()
    r = env.exec(cid, ["sleep", "30"], timeout=1)
    assert r["timed_out"] and r["exit_code"] == -1
    assert time.time() - t0 < 10
    r = env.exec(cid, ["sh", "-c", "ps -o args | grep -c '^sleep 30'"])
    assert r["stdout"] == b"0\n"


def test_exec_in_missing_container_reports_runc_error(env):
    r = env.exec("no-such-" + str(os.getpid()), ["true"])
    assert r["errno"] == 5 and "does not exist" in r["error"], r


def test_runtime_error_bad_bundle(env):
    cid = env.new_id()
    res = env.create(cid, os.path.join(env.dir, "no-bundle"))
    assert res["errno"] == 5
    assert "runc create failed" in res["error"] and "no such file or directory" in res["error"]
    assert not os.path.exists(os.path.join(env.socks, cid))
    assert not os.path.exists(os.path.join(env.exits, cid))


def test_runtime_error_bad_runtime_arg(env):
    cid = env.new_id()
    res = env.create(cid, env.bundle(cid, ["true"]), runtime_args=["--no-such-flag"])
    assert res["errno"] == 5 and "no-such-flag" in res["error"], res


def test_runtime_error_bad_process_binary(env):
    cid = env.new_id()
    res = env.create(cid, env.bundle(cid, ["/no/such/binary"]))
    assert res["errno"] == 5 and "/no/such/binary" in res["error"], res
