"""crictl against cricketd, the way one drives CRI-O by hand: `crictl pull`,
`runp`, `create`, `start`, `ps`, `inspect`, `logs`, `exec -s`, `stop`, `rm`,
and `crictl run` (pod + container in one go), with JSON configs the test
writes and busybox from the test's own registry on 127.0.0.1. The real
daemon, runc, monitors, overlay mounts and a bridge of the test's own (the
sandbox fixtures); afterwards no container record, bundle, mount, monitor,
runc state, netns pin, veth or lease may be left (envf's leak checks plus
ours). Skipped when crictl is neither in $CRICTL nor on PATH."""
import json
import os
import shutil
import subprocess
import time

import pytest

from registry import registry_config
from test_container import reg  # noqa: F401 (module fixture: registry with busybox)
from test_sandbox import envf, pytestmark as _sandbox_mark  # noqa: F401

CRICTL = os.environ.get("CRICTL") or shutil.which("crictl")
pytestmark = [_sandbox_mark, pytest.mark.skipif(not CRICTL, reason="crictl not installed")]


class Crictl:
    """crictl with its own (otherwise empty) config file, both endpoints on
    the test daemon's socket."""

    def __init__(self, env):
        self.env = env
        self.config = os.path.join(env.base, "crictl.yaml")
        with open(self.config, "w") as f:
            f.write("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n"
                    "debug: false\npull-image-on-create: false\ndisable-pull-on-run: false\n" %
                    (env.daemon.socket, env.daemon.socket))

    def run(self, *args, timeout=120):
        return subprocess.run([CRICTL, "--config", self.config] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def __call__(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr,
                                   self.env.daemon.logs()[-3000:])
        return r.stdout

    def ids(self, *args):
        return self(*args).split()

    def inspect(self, cid):
        return json.loads(self("inspect", "-o", "json", cid))


def write_json(env, name, obj):
    path = os.path.join(env.base, name)
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def pod_json(env, name, **extra):
    cfg = {"metadata": {"name": name, "namespace": "default", "uid": "u-" + name, "attempt": 1},
           "hostname": name + "-host", "log_directory": os.path.join(env.base, "logs", name),
           "labels": {"pod": name}, "linux": {}}
    cfg.update(extra)
    return write_json(env, name + "-pod.json", cfg)


def ctr_json(env, name, command, **extra):
    cfg = {"metadata": {"name": name}, "image": {"image": "busybox"}, "command": command,
           "log_path": name + ".log", "labels": {"app": name},
           "envs": [{"key": "GREETING", "value": "hello-" + name}], "linux": {}}
    cfg.update(extra)
    return write_json(env, name + "-ctr.json", cfg)


def wait_for(fn, what, timeout=20):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


def procs_with_cmdline(cmdline):
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if f.read() == cmdline:
                    found.append(int(p))
        except OSError:
            pass
    return found


def no_container_leftovers(env):
    ctr_dir = os.path.join(env.daemon.root, "containers")
    assert not os.path.isdir(ctr_dir) or os.listdir(ctr_dir) == []
    bundles = os.path.join(env.daemon.runroot, "containers")
    assert not os.path.isdir(bundles) or os.listdir(bundles) == []
    assert env.leaks() == {}, env.daemon.logs()[-3000:]


@pytest.fixture
def cenv(envf, reg):  # noqa: F811
    env = envf(extra_config=registry_config(reg.host))
    env.reg = reg
    return env


def test_crictl_pull_runp_create_start_ps_inspect_logs_exec_stop_rm(cenv):
    env, crictl = cenv, Crictl(cenv)
    # no implicit pull on create: with the image absent, create is refused
    pod_cfg = pod_json(env, "cpod")
    cmd = ["sh", "-c", "echo $GREETING; echo to-stderr >&2; "
           "trap 'echo got-term; exit 7' TERM; while true; do sleep 1; done"]
    ctr_cfg = ctr_json(env, "box", cmd)
    pod = crictl("runp", pod_cfg).strip()
    assert len(pod) == 64, pod
    r = crictl.run("create", "--no-pull", pod, ctr_cfg, pod_cfg)
    assert r.returncode != 0 and "not found" in (r.stderr + r.stdout).lower(), r
    assert crictl("ps", "-a", "-q") == ""

    out = crictl("pull", "busybox")
    assert "Image is up to date for sha256:" + env.reg.busybox.id.split(":")[-1][:10] in out \
        or env.reg.busybox.id.split(":")[-1] in out, out
    assert "docker.io/library/busybox" in crictl("images")

    cid = crictl("create", pod, ctr_cfg, pod_cfg).strip()
    assert len(cid) == 64 and cid != pod, cid
    assert crictl.ids("ps", "-a", "-q", "--state", "created") == [cid]
    assert crictl.ids("ps", "-q") == []  # ps lists running containers only
    created = crictl.inspect(cid)["status"]
    # crictl prints times as RFC 3339; an unset one is Go's zero time, as with CRI-O
    assert created["state"] == "CONTAINER_CREATED", created
    assert created["startedAt"] == "0001-01-01T00:00:00Z", created
    assert created["createdAt"][:4] == time.strftime("%Y", time.gmtime()), created

    assert crictl("start", cid).strip() == cid
    out = crictl("ps")
    lines = [l for l in out.splitlines() if l.startswith(cid[:13])]
    assert len(lines) == 1 and "Running" in lines[0] and " box " in lines[0], out
    assert pod[:13] in lines[0], out  # the POD ID column
    assert crictl.ids("ps", "-q") == [cid]
    assert crictl.ids("ps", "-q", "--pod", pod[:10]) == [cid]
    assert crictl.ids("ps", "-q", "--label", "app=box") == [cid]
    assert crictl.ids("ps", "-q", "--label", "app=nope") == []
    assert crictl.ids("ps", "-q", "--name", "box") == [cid]
    assert crictl.ids("ps", "-q", "--state", "exited") == []
    listed = json.loads(crictl("ps", "-o", "json"))["containers"]
    assert [c["id"] for c in listed] == [cid] and listed[0]["state"] == "CONTAINER_RUNNING"
    assert listed[0]["podSandboxId"] == pod and listed[0]["labels"] == {"app": "box"}

    ins = crictl.inspect(cid[:13])
    st, info = ins["status"], ins["info"]
    assert st["id"] == cid and st["state"] == "CONTAINER_RUNNING"
    assert st["metadata"]["name"] == "box"
    assert st["createdAt"] <= st["startedAt"] and st["finishedAt"] == "0001-01-01T00:00:00Z"
    assert st["image"]["image"] == "docker.io/library/busybox:latest"
    assert st["imageRef"].startswith("docker.io/library/busybox@sha256:")
    assert st["logPath"] == os.path.join(env.base, "logs", "cpod", "box.log")
    assert info["sandboxID"] == pod
    pid = info["pid"]
    assert isinstance(pid, int) and pid > 0
    with open("/proc/%d/cmdline" % pid, "rb") as f:  # the container's own sh
        assert f.read().split(b"\0")[:2] == [b"sh", b"-c"]
    spec = info["runtimeSpec"]
    assert spec["process"]["args"] == cmd
    assert "GREETING=hello-box" in spec["process"]["env"]
    assert spec["hostname"] == "cpod-host"
    assert os.path.isabs(spec["root"]["path"]) and os.path.ismount(spec["root"]["path"])
    netns = [n for n in spec["linux"]["namespaces"] if n["type"] == "network"]
    assert netns and netns[0]["path"].endswith(pod)

    # logs: stdout lines on stdout, stderr lines on stderr
    wait_for(lambda: "hello-box" in crictl.run("logs", cid).stdout, "logs of " + cid)
    r = crictl.run("logs", cid)
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["hello-box"], r
    assert r.stderr.splitlines() == ["to-stderr"], r
    # --tail 1: the last line of the file (the stderr one, written after echo)
    r = crictl.run("logs", "--timestamps", "--tail", "1", cid)
    assert r.returncode == 0 and r.stdout == "", r
    assert r.stderr.endswith(" to-stderr\n") and r.stderr.count("\n") == 1, r
    assert r.stderr[4] == "-" and r.stderr[10] == "T", r

    # exec -s: output and exit code come back through crictl (v1.26 prints
    # fmt.Println(stdout) then fmt.Println(stderr), both on its stdout; a
    # non-zero code is an error "command '...' exited with N: <stderr>")
    assert crictl("exec", "-s", cid, "cat", "/etc/hostname") == "cpod-host\n\n\n"
    assert crictl("exec", "-s", cid, "sh", "-c", "echo $GREETING") == "hello-box\n\n\n"
    r = crictl.run("exec", "-s", cid, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 1 and r.stdout == "", r
    assert "command 'sh -c echo out; echo err >&2; exit 3' exited with 3: err\\n" in r.stderr, r  # logrus quoting
    r = crictl.run("exec", "-s", cid, "sh", "-c", "exit 0")
    assert (r.returncode, r.stdout) == (0, "\n\n"), r
    r = crictl.run("exec", "-s", cid, "/no/such/binary")
    assert r.returncode != 0, r
    t0 = time.time()
    r = crictl.run("exec", "-s", "--timeout", "1", cid, "sleep", "30")
    assert r.returncode != 0 and time.time() - t0 < 15, (r, time.time() - t0)
    # the timed-out exec'd process is gone
    wait_for(lambda: not procs_with_cmdline(b"sleep\x0030\x00"), "the timed-out exec to die")

    t0 = time.time()
    assert crictl("stop", "--timeout", "10", cid).strip() == cid
    assert time.time() - t0 < 5  # the trap exits on SIGTERM
    assert crictl.ids("ps", "-q") == []
    assert crictl.ids("ps", "-a", "-q", "--state", "exited") == [cid]
    st = crictl.inspect(cid)["status"]
    assert st["state"] == "CONTAINER_EXITED" and st["exitCode"] == 7 and st["reason"] == "Error"
    assert "got-term" in crictl("logs", cid)
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")[:2] != [b"sh", b"-c"]
    crictl("stop", cid)  # idempotent

    assert crictl("rm", cid).strip() == cid
    assert crictl("ps", "-a", "-q") == ""
    r = crictl.run("inspect", cid)
    assert r.returncode != 0 and "not found" in r.stderr.lower(), r
    assert not os.path.exists(spec["root"]["path"])
    # start of a removed container fails
    assert crictl.run("start", cid).returncode != 0

    crictl("stopp", pod)
    crictl("rmp", pod)
    assert crictl("pods", "-q") == ""
    no_container_leftovers(env)


def test_crictl_run_pod_and_container_in_one_go(cenv):
    env, crictl = cenv, Crictl(cenv)
    pod_cfg = pod_json(env, "runpod")
    # crictl run pulls the image itself (disable-pull-on-run: false)
    long_cfg = ctr_json(env, "srv", ["sh", "-c", "echo $GREETING; exec sleep 100000"])
    cid = crictl("run", long_cfg, pod_cfg).strip()
    assert len(cid) == 64, cid
    assert crictl.ids("ps", "-q") == [cid]
    pods = json.loads(crictl("pods", "-o", "json"))["items"]
    assert len(pods) == 1 and pods[0]["metadata"]["name"] == "runpod"
    assert pods[0]["state"] == "SANDBOX_READY"
    pod = pods[0]["id"]
    ins = crictl.inspect(cid)
    assert ins["status"]["state"] == "CONTAINER_RUNNING" and ins["info"]["sandboxID"] == pod
    assert ins["info"]["pid"] > 0
    assert ins["info"]["runtimeSpec"]["process"]["args"][-1] == "echo $GREETING; exec sleep 100000"
    wait_for(lambda: crictl("logs", cid) == "hello-srv\n", "logs of " + cid)
    # the container sees the pod's IP
    ip = json.loads(crictl("inspectp", pod))["status"]["network"]["ip"]
    assert ip.startswith(env.net.subnet_prefix + "."), ip
    assert ip in crictl("exec", "-s", cid, "cat", "/proc/net/fib_trie")

    # a second container through `crictl run` with the same pod config: a new
    # pod with the same name is refused (the name is taken), nothing is left
    # behind by the failed run
    r = crictl.run("run", ctr_json(env, "dup", ["true"]), pod_cfg)
    assert r.returncode != 0, r
    assert crictl.ids("pods", "-q") == [pod] and crictl.ids("ps", "-a", "-q") == [cid]

    # a short-lived container in another pod: exit code, reason and output
    once = crictl("run", ctr_json(env, "once", ["sh", "-c", "echo $GREETING; exit 4"]),
                  pod_json(env, "oncepod")).strip()
    st = wait_for(lambda: (lambda s: s if s["state"] == "CONTAINER_EXITED" else None)(
        crictl.inspect(once)["status"]), "exit of " + once)
    assert st["exitCode"] == 4 and st["reason"] == "Error", st
    assert crictl("logs", once) == "hello-once\n"
    assert crictl.ids("ps", "-a", "-q", "--state", "exited") == [once]
    assert sorted(crictl.ids("ps", "-a", "-q")) == sorted([cid, once])

    # rm -f stops and removes a running container; rmp -f a pod with its containers
    # (crictl v1.26 prints the id once for the stop and once for the removal)
    assert set(crictl.ids("rm", "-f", cid)) == {cid}
    assert crictl.ids("ps", "-a", "-q") == [once]
    crictl("rmp", "-f", "-a")
    assert crictl("pods", "-q") == "" and crictl("ps", "-a", "-q") == ""
    no_container_leftovers(env)
