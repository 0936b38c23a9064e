"""Crash-safety helpers shared by test_crash.py, test_failpoints.py and
test_random_kill.py: a daemon + network env (test_sandbox.Env) that can be
SIGKILLed and restarted, and one leak check over everything a pod, a
container or a pull can leave on the host."""
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time

import bundle
from conftest import Cri, api_pb2
from registry import store_leftovers
from test_sandbox import Env, sh

BUSYBOX_DIRS = ("bin",)


def iptables_rules(net):
    """portmap's rules for this test's network: the DNAT rule's comment
    names the network, the per-pod chain's rules its subnet."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True,
                         timeout=30).stdout if _have("iptables-save") else ""
    marks = ('name: \\"%s\\"' % net.name, "-s %s " % net.subnet,
             "--to-destination %s." % net.subnet_prefix)
    return [l for l in out.splitlines() if any(m in l for m in marks)]


def _have(prog):
    return any(os.access(os.path.join(d, prog), os.X_OK)
               for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":") + ["/usr/sbin"])


def _entries(path, ignore=()):
    if not os.path.isdir(path):
        return []
    return sorted(e for e in os.listdir(path) if e not in ignore)


class CrashEnv(Env):
    """Env whose daemon can be killed and restarted."""

    def _gone(self):
        """After the daemon died: its log and the CRI client closed."""
        if self.daemon.log:
            self.daemon.log.close()
        self.daemon.proc = None
        if self.cri:
            self.cri.close()
            self.cri = None

    def kill(self):
        """SIGKILL, as a crash would; the helpers it started keep running."""
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait()
        self._gone()

    def wait_exit(self, timeout=120):
        """Waits for the daemon to die on its own (a failpoint); its code."""
        rc = self.daemon.proc.wait(timeout=timeout)
        self._gone()
        return rc

    def start_again(self, env=None):
        if env is not None:
            self.daemon.env = env
        self.daemon.start()
        self.cri = Cri(self.daemon.socket)
        return self

    def remove_everything(self):
        """Through the CRI, as kubelet would: containers, pods."""
        for c in self.cri.call("ListContainers").containers:
            self.cri.call("StopContainer", timeout=60, container_id=c.id)
            self.cri.call("RemoveContainer", timeout=60, container_id=c.id)
        for p in self.list():
            self.stop(p.id)
            self.remove(p.id)

    def full_leaks(self, images_allowed=(), trash_wait=120):
        """Everything left after remove_everything(): {what: [items]}.
        images_allowed: ids of images that may stay (the store is then not
        checked for leftovers); trash_wait: seconds the background deleter
        gets to empty the trash."""
        leaks = dict(self.leaks())
        if self.cri is not None:
            if self.list():
                leaks["pod records"] = [p.id for p in self.list()]
            ctrs = self.cri.call("ListContainers").containers
            if ctrs:
                leaks["container records"] = [c.id for c in ctrs]
            imgs = [i.id for i in self.cri.call("ListImages").images
                    if i.id not in images_allowed]
            if imgs:
                leaks["image records"] = imgs
        rules = iptables_rules(self.net)
        if rules:
            leaks["iptables"] = rules
        state = _entries(self.runc_root)
        if state:
            leaks["runc state dirs"] = state
        # the per-call log and resources files (oci/: <runc root>.tmp)
        tmp = _entries(self.runc_root + ".tmp")
        if tmp:
            leaks["runc call files"] = tmp
        run, root = self.daemon.runroot, self.daemon.root
        # removed trees wait in the trash for the background deleter: a
        # bounded wait for it, then what stays is a leak
        trash = [os.path.join(root, "trash"), os.path.join(run, "trash")]
        if self.daemon.proc is not None:
            wait_for(lambda: not any(_entries(t) for t in trash), timeout=trash_wait)
        for what, path in (("trash", trash[0]), ("runroot trash", trash[1]),
                           ("bundles", os.path.join(run, "sandboxes")),
                           ("container bundles", os.path.join(run, "containers")),
                           ("exit files", os.path.join(run, "exits")),
                           ("monitor dirs", os.path.join(run, "conmon")),
                           ("pod dirs", os.path.join(root, "sandboxes")),
                           ("container dirs", os.path.join(root, "containers")),
                           ("CNI cache", os.path.join(root, "cni", "results")),
                           ("pause image mounts", os.path.join(root, "pause", "pods")),
                           ("blobs/ingest", os.path.join(root, "blobs", "ingest")),
                           ("layers/tmp", os.path.join(root, "layers", "tmp"))):
            left = _entries(path)
            if left:
                leaks[what] = left
        if not images_allowed:
            left = store_leftovers(root)
            if left:
                leaks["image store"] = left
        return leaks

    # ---- a whole object life through the CRI ----

    def pull(self, ref="busybox"):
        return self.cri.call("PullImage", timeout=120,
                             image=api_pb2.ImageSpec(image=ref)).image_ref

    def create(self, pod_id, cfg, name="c"):
        ccfg = api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name=name),
                                       image=api_pb2.ImageSpec(image="busybox"),
                                       command=["sleep", "1000"])
        return self.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod_id,
                             config=ccfg, sandbox_config=cfg).container_id

    def remove_images(self):
        for i in self.cri.call("ListImages").images:
            self.cri.call("RemoveImage", timeout=60, image=api_pb2.ImageSpec(image=i.id))


def make_env(base, **kw):
    return CrashEnv(base, **kw).start()


@contextlib.contextmanager
def crash_envs(prefix, **defaults):
    """A factory of CrashEnvs, each in a new /tmp/<prefix>* dir:
    make(start=True, **kw) with kw over defaults. On exit every env made
    has its daemon stopped (if it still runs), is cleaned up and removed."""
    made = []

    def make(start=True, **kw):
        e = CrashEnv(tempfile.mkdtemp(prefix=prefix, dir="/tmp"), **dict(defaults, **kw))
        made.append(e)
        return e.start() if start else e

    try:
        yield make
    finally:
        for e in made:
            try:
                if e.daemon.proc is not None and e.daemon.proc.poll() is None:
                    e.cri.close()
                    e.daemon.stop()
            finally:
                e.cleanup()
                shutil.rmtree(e.base, ignore_errors=True)


def wait_for(pred, timeout=30, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


__all__ = ["CrashEnv", "make_env", "crash_envs", "wait_for", "sh", "bundle"]
