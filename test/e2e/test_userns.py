"""Pod user namespaces (issue 13): userns_options mode POD with one uid and
one gid range puts the infra and every container of the pod in one user
namespace made for the pod (pinned under <runroot>/userns/<id>, the pod's
netns made inside it); the rootfs is an overlay of id-mapped layers with an
upper dir owned by the mapped root; the pod's /dev/shm belongs to it. NODE
mode is the host's. CONTAINER, TARGET and bad mappings are refused with
INVALID_ARGUMENT naming the field, and nothing is left behind."""
import fcntl
import json
import os
import subprocess

import grpc
import pytest

import api_pb2
import bundle
from registry import push_image, registry_config
from test_container import Pod, exec_sync, expect_error, reg  # noqa: F401 (fixture)
from test_sandbox import envf, mounts_under, pytestmark  # noqa: F401 (fixture, skip mark)

NS_GET_USERNS = 0xb701  # ioctl: the user namespace owning a namespace
FIELD = "config.linux.security_context.namespace_options.userns_options"
HOST_ID = 300000
LENGTH = 65536


def userns(mode, uids=None, gids=None):
    m = lambda r: [api_pb2.IDMapping(container_id=c, host_id=h, length=n) for c, h, n in r]
    return api_pb2.UserNamespace(mode=mode, uids=m(uids or []), gids=m(gids or []))


def ns_options(u):
    return api_pb2.NamespaceOption(userns_options=u)


def pod_linux(u):
    return api_pb2.LinuxPodSandboxConfig(
        security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=ns_options(u)))


def ctr_linux(u):
    return api_pb2.LinuxContainerConfig(
        security_context=api_pb2.LinuxContainerSecurityContext(namespace_options=ns_options(u)))


class UsernsPod(Pod):
    """A Pod whose sandbox config carries userns_options `u`."""

    def __init__(self, env, reg, u):
        self.env, self.cri, self.reg = env, env.cri, reg
        self.logs = os.path.join(env.base, "logs")
        self.pull("busybox")
        self.u = u
        self.cfg = env.config("up", hostname="userns-host", log_directory=self.logs,
                              linux=pod_linux(u))
        self.id = env.run(self.cfg)


@pytest.fixture
def uenv(envf, reg):
    env = envf(extra_config=registry_config(reg.host))
    # mkdtemp makes the test's base 0700: the pod's mapped root must walk
    # through it to its rootfs, as it walks /var/lib on a node (the daemon
    # checks at start)
    os.chmod(env.base, 0o711)
    env.restart()
    return env


def runc_pid(env, cid):
    out = subprocess.run([bundle.RUNC, "--root", env.runc_root, "state", cid],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["pid"]


def test_status_reports_user_namespaces(uenv):
    h = uenv.cri.call("Status", verbose=False).runtime_handlers
    assert len(h) == 1 and h[0].features.user_namespaces


def test_unreachable_root_turns_user_namespaces_off(envf):
    env = envf()  # its base stays 0700 (mkdtemp): no mapped root gets through
    assert not env.cri.call("Status").runtime_handlers[0].features.user_namespaces
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID, LENGTH)])
    cfg = env.config("off", linux=pod_linux(u))
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, env.run, cfg)
    assert msg.startswith(FIELD) and "not available" in msg, msg
    assert env.list() == [] and mounts_under(env.base) == []
    assert "pod user namespaces are off" in env.daemon.logs()


def test_pod_mode_maps_ids_and_root_can_write(uenv, reg):
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID + 1000, LENGTH)])
    p = UsernsPod(uenv, reg, u)
    pins = os.listdir(os.path.join(uenv.daemon.runroot, "userns"))
    assert pins == [p.id]
    opts = uenv.status(p.id).status.linux.namespaces.options.userns_options
    assert opts.mode == api_pb2.POD and len(opts.uids) == 1 and len(opts.gids) == 1
    assert (opts.gids[0].container_id, opts.gids[0].host_id, opts.gids[0].length) == \
        (0, HOST_ID + 1000, LENGTH)
    script = ("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
              "echo hi > /made-by-root && echo ok-rootfs; "
              "echo x > /dev/shm/shmfile && echo ok-shm; "
              "stat -c %u:%g /etc/passwd /; cat /etc/hostname")
    cid = p.run("c", command=["sh", "-c", script], linux=ctr_linux(u))
    out = p.output(cid)
    assert out[0].split() == ["0", str(HOST_ID), str(LENGTH)], out
    assert out[1].split() == ["0", str(HOST_ID + 1000), str(LENGTH)], out
    assert out[2:4] == ["0", "0"], out
    assert "ok-rootfs" in out and "ok-shm" in out, out
    # image files (owned by host root in the layer store) are the container
    # root's through the id-mapped layers; so is the root dir (upper)
    assert out.count("0:0") == 2, out
    assert out[-1] == "userns-host"
    # the writes land on the host as the mapped ids
    upper = os.path.join(uenv.daemon.root, "containers", cid, "upper", "made-by-root")
    st = os.stat(upper)
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID + 1000)
    shm = os.path.join(uenv.daemon.runroot, "sandboxes", p.id, "shm", "shmfile")
    st = os.stat(shm)
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID + 1000)
    st = os.stat(os.path.dirname(shm))  # the tmpfs root is the mapped root's
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID + 1000)
    # the infra sits in the same user namespace as the container
    infra = runc_pid(uenv, p.id)
    with open("/proc/%d/uid_map" % infra) as f:
        assert f.read().split() == ["0", str(HOST_ID), str(LENGTH)]
    assert os.stat("/proc/%d/ns/user" % infra).st_ino == \
        os.stat(os.path.join(uenv.daemon.runroot, "userns", p.id)).st_ino
    # a long-running container joins it too, and survives a daemon restart
    cid2 = p.run("long", command=["sleep", "600"], linux=ctr_linux(u))
    r = exec_sync(p, cid2, ["cat", "/proc/self/uid_map"])
    assert r.exit_code == 0 and r.stdout.split() == [b"0", str(HOST_ID).encode(),
                                                     str(LENGTH).encode()], r
    uenv.restart()
    p.cri = uenv.cri
    pid2 = runc_pid(uenv, cid2)
    assert os.stat("/proc/%d/ns/user" % pid2).st_ino == os.stat("/proc/%d/ns/user" % infra).st_ino
    cid3 = p.run("after", command=["sh", "-c", "touch /x && cat /proc/self/uid_map"],
                 linux=ctr_linux(u))
    assert p.output(cid3)[0].split() == ["0", str(HOST_ID), str(LENGTH)]
    for c in (cid, cid2, cid3):
        p.stop(c, timeout=0)
        p.remove(c)
    assert os.listdir(os.path.join(uenv.daemon.root, "rootfs-userns")) == ["pause"]
    uenv.stop(p.id)
    assert os.listdir(os.path.join(uenv.daemon.runroot, "userns")) == []
    uenv.remove(p.id)


def test_node_mode_is_the_hosts(uenv, reg):
    u = userns(api_pb2.NODE)
    p = UsernsPod(uenv, reg, u)
    cid = p.run("c", command=["cat", "/proc/self/uid_map"], linux=ctr_linux(u))
    opts = uenv.status(p.id).status.linux.namespaces.options.userns_options
    assert opts.mode == api_pb2.NODE and not opts.uids
    with open("/proc/self/uid_map") as f:
        host = f.read().split()
    assert p.output(cid)[0].split() == host
    assert not os.path.isdir(os.path.join(uenv.daemon.runroot, "userns")) or \
        os.listdir(os.path.join(uenv.daemon.runroot, "userns")) == []
    p.remove(cid)


@pytest.mark.parametrize("u,linux_kw,field", [
    (userns(api_pb2.CONTAINER), {}, FIELD + ".mode"),
    (userns(api_pb2.TARGET), {}, FIELD + ".mode"),
    (userns(api_pb2.POD, [(0, 1000, 100000), (0, 2000, 100000)], [(0, 1000, 100000)]), {},
     FIELD + ".uids"),
    (userns(api_pb2.POD, [(0, 1000, 100000)], [(0, 1000, 10), (5, 2000, 10)]), {},
     FIELD + ".gids"),
    (userns(api_pb2.POD, [(1, 1000, 100000)], [(1, 1000, 100000)]), {},
     FIELD + ".uids[0].container_id"),
    (userns(api_pb2.POD, [(0, 1000, 0)], [(0, 1000, 10)]), {}, FIELD + ".uids[0].length"),
    (userns(api_pb2.POD, [(0, 0, 65536)], [(0, 1000, 10)]), {}, FIELD + ".uids[0].host_id"),
    (userns(api_pb2.POD, [(0, 4294900000, 100000)], [(0, 1000, 10)]), {}, FIELD + ".uids[0]"),
    (userns(api_pb2.POD, [(0, 1000, 10)], []), {}, FIELD + ".gids"),
    (userns(api_pb2.NODE, [(0, 1000, 10)], []), {}, FIELD),
    (userns(api_pb2.POD, [(0, 1000, 65536)], [(0, 1000, 65536)]), {"network": api_pb2.NODE},
     FIELD),
])
def test_bad_userns_is_refused_and_leaves_nothing(uenv, u, linux_kw, field):
    opts = api_pb2.NamespaceOption(userns_options=u, **linux_kw)
    cfg = uenv.config("bad", linux=api_pb2.LinuxPodSandboxConfig(
        security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=opts)))
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, uenv.run, cfg)
    assert msg.startswith(field), msg
    assert uenv.list() == []
    for d in ("userns", "netns", "sandboxes"):
        path = os.path.join(uenv.daemon.runroot, d)
        assert not os.path.isdir(path) or os.listdir(path) == [], d
    assert mounts_under(uenv.base) == []


def test_container_userns_mode_container_is_refused(uenv, reg):
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID, LENGTH)])
    p = UsernsPod(uenv, reg, u)
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, p.create, "c", command=["true"],
                       linux=ctr_linux(userns(api_pb2.CONTAINER)))
    assert msg.startswith(FIELD.replace("config.", "config.", 1) + ".mode"), msg
    assert p.list() == []
    assert not os.listdir(os.path.join(uenv.daemon.root, "containers"))


def test_pause_image_infra_in_pod_userns(envf, reg):
    push_image(reg, "library/mypause", "1", [reg.busybox_layer],
               config_extra={"Entrypoint": ["/bin/sleep"], "Cmd": ["86400"]})
    env = envf(extra_config=registry_config(reg.host, "  pause_image: mypause:1\n"))
    os.chmod(env.base, 0o711)
    env.restart()
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID, LENGTH)])
    p = UsernsPod(env, reg, u)
    infra = runc_pid(env, p.id)
    with open("/proc/%d/uid_map" % infra) as f:
        assert f.read().split() == ["0", str(HOST_ID), str(LENGTH)]
    with open("/proc/%d/cmdline" % infra, "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"/bin/sleep", b"86400"]
    rootfs = os.path.join(env.daemon.root, "rootfs-userns", "pause-pods", p.id, "rootfs")
    assert rootfs in mounts_under(env.base)
    env.stop(p.id)
    env.remove(p.id)
    assert rootfs not in mounts_under(env.base)
    assert not os.path.exists(os.path.dirname(rootfs))


def test_image_volume_and_host_volume_in_pod_userns(uenv, reg):
    """Bind sources under 0700 dirs (image volumes in the bundle dir, pod
    files) need no walk: runc opens them before it joins the namespace."""
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID, LENGTH)])
    p = UsernsPod(uenv, reg, u)
    host_dir = os.path.join(uenv.base, "vol")
    os.makedirs(host_dir)
    with open(os.path.join(host_dir, "f"), "w") as f:
        f.write("host\n")
    mounts = [api_pb2.Mount(container_path="/mnt/img", readonly=True,
                            image=api_pb2.ImageSpec(image="busybox")),
              api_pb2.Mount(container_path="/mnt/host", host_path=host_dir)]
    script = "ls /mnt/img/bin/sh; cat /mnt/host/f /etc/hosts | head -1"
    cid = p.run("c", command=["sh", "-c", script], mounts=mounts, linux=ctr_linux(u))
    assert p.output(cid)[:2] == ["/mnt/img/bin/sh", "host"]
    p.remove(cid)


def test_failed_run_unpins_the_user_namespace(uenv):
    """A failure after the pins (CNI ADD here) takes the user namespace and
    the netns made inside it down again; CNI ran in the netns the pod's
    user namespace owns."""
    uenv.wrap_plugin("bridge", 'if [ "$CNI_COMMAND" = ADD ]; then\n'
                     '  echo \'{"cniVersion":"1.0.0","code":11,"msg":"injected failure"}\'\n'
                     '  exit 1\nfi')
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID, LENGTH)])
    cfg = uenv.config("failing", linux=pod_linux(u))
    msg = expect_error(grpc.StatusCode.UNKNOWN, uenv.run, cfg)
    assert "injected failure" in msg
    assert uenv.list() == []
    assert os.listdir(os.path.join(uenv.daemon.runroot, "userns")) == []
    assert uenv.leaks() == {}
    os.unlink(os.path.join(uenv.wrapper_dir, "bridge"))
    pid = uenv.run(cfg)
    # the pod's netns is owned by its user namespace
    pin = os.path.join(uenv.daemon.runroot, "netns", pid)
    fd = os.open(pin, os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            assert os.fstat(owner).st_ino == \
                os.stat(os.path.join(uenv.daemon.runroot, "userns", pid)).st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)
    uenv.remove(pid)


def owner_ino(pin):
    """The inode of the user namespace owning the namespace pinned at pin."""
    fd = os.open(pin, os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            return os.fstat(owner).st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)


def test_pod_without_infra_pins_ipc_and_uts_inside_the_pod_userns(uenv, reg):
    """pid CONTAINER with runtime.drop_infra (the default): no pause; the
    ipc and uts pins are made inside the pod's user namespace, as its netns
    is, so containers of that user namespace may join them."""
    u = userns(api_pb2.POD, [(0, HOST_ID, LENGTH)], [(0, HOST_ID, LENGTH)])
    p = UsernsPod.__new__(UsernsPod)
    p.env, p.cri, p.reg, p.u = uenv, uenv.cri, reg, u
    p.logs = os.path.join(uenv.base, "logs")
    p.pull("busybox")
    opts = api_pb2.NamespaceOption(userns_options=u, pid=api_pb2.CONTAINER)
    p.cfg = uenv.config("up", hostname="userns-host", log_directory=p.logs,
                        linux=api_pb2.LinuxPodSandboxConfig(
                            security_context=api_pb2.LinuxSandboxSecurityContext(
                                namespace_options=opts)))
    p.id = uenv.run(p.cfg)
    assert json.loads(uenv.status(p.id, verbose=True).info["info"])["infra"] is False
    assert p.id not in uenv.runc_list()
    run = uenv.daemon.runroot
    user_ino = os.stat(os.path.join(run, "userns", p.id)).st_ino
    for kind in ("netns", "ipcns", "utsns"):
        assert owner_ino(os.path.join(run, kind, p.id)) == user_ino, kind
    cid = p.run("c", command=["sleep", "600"], linux=ctr_linux(u))
    r = exec_sync(p, cid, ["sh", "-c", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; "
                           "hostname; echo x > /dev/shm/f && echo ok-shm; id -u"])
    out = r.stdout.decode().split()
    assert out == ["ipc:[%d]" % os.stat(os.path.join(run, "ipcns", p.id)).st_ino,
                   "uts:[%d]" % os.stat(os.path.join(run, "utsns", p.id)).st_ino,
                   "userns-host", "ok-shm", "0"], r
    uenv.remove(p.id)
    for kind in ("netns", "ipcns", "utsns", "userns"):
        d = os.path.join(run, kind)
        assert not os.path.isdir(d) or os.listdir(d) == [], kind
