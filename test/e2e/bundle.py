"""Helpers for OCI bundles the tests build themselves: a busybox-static
rootfs and a config.json from `runc spec`, edited as JSON.

    b = make_bundle(tmpdir, ["sh", "-c", "echo hi"])
    b = make_bundle(tmpdir, ["sleep", "100"], memory_limit=16 << 20)

Everything lives under the directory given; removing it removes the bundle.
Reusable by any e2e test that needs a container without an image store."""
import json
import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"
RUNC = shutil.which("runc") or "/usr/sbin/runc"


def have_prereqs():
    """(ok, reason): root, runc and busybox-static are all needed."""
    if os.geteuid() != 0:
        return False, "needs root"
    if not os.path.exists(RUNC):
        return False, "runc not installed"
    if not os.path.exists(BUSYBOX):
        return False, "busybox-static not installed"
    return True, ""


def make_rootfs(rootfs):
    """A rootfs holding busybox and a symlink per applet under /bin."""
    bindir = os.path.join(rootfs, "bin")
    os.makedirs(bindir, exist_ok=True)
    for d in ("proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(bindir, "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for a in applets:
        link = os.path.join(bindir, a)
        if a != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")


def make_bundle(bundle, args, env=None, terminal=False, memory_limit=None, cgroups_path=None,
                cwd="/", rootfs=None):
    """Creates bundle/ with config.json (and bundle/rootfs unless `rootfs`
    names an existing one to share). Returns the bundle path."""
    os.makedirs(bundle, exist_ok=True)
    subprocess.run([RUNC, "spec"], cwd=bundle, check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    if rootfs is None:
        rootfs = os.path.join(bundle, "rootfs")
        make_rootfs(rootfs)
    spec["root"] = {"path": rootfs, "readonly": False}
    proc = spec["process"]
    proc["args"] = list(args)
    proc["terminal"] = terminal
    proc["cwd"] = cwd
    proc["env"] = ["PATH=/bin", "HOME=/root"] + list(env or [])
    if not terminal:
        proc["env"].append("TERM=dumb")
    linux = spec.setdefault("linux", {})
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    if memory_limit:
        mem = linux.setdefault("resources", {}).setdefault("memory", {})
        mem["limit"] = memory_limit
        mem["swap"] = memory_limit  # no swap on top of the limit
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    return bundle


def process_json(path, args, terminal=False, env=None, cwd="/"):
    """Writes an OCI process spec for `runc exec --process`."""
    proc = {
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": list(args),
        "env": ["PATH=/bin", "HOME=/root"] + list(env or []),
        "cwd": cwd,
        "noNewPrivileges": True,
    }
    with open(path, "w") as f:
        json.dump(proc, f)
    return path


def runc_delete(root, cid):
    """Best-effort `runc delete --force` (cleanup must never raise)."""
    subprocess.run([RUNC, "--root", root, "delete", "--force", cid],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
