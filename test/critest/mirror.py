#!/usr/bin/python3
"""Offline mirror of the images critest v1.36.0 pulls.

Starts Debian's docker-registry on 127.0.0.1 (random port, storage under the
given work directory) through test/e2e/registry.py, pushes stand-ins for every
image critest's Linux suite pulls, built here from busybox-static, under the
exact repository names and tags critest uses (with the registry host dropped:
cricketd maps registry.k8s.io and gcr.io to this registry with
image.registries.<host>.location), then exits and leaves the registry running.

Usage: mirror.py WORKDIR
Writes WORKDIR/mirror.env (shell syntax): MIRROR_HOST=127.0.0.1:<port> and
MIRROR_PID=<registry pid>. The caller stops the registry by that PID.

What critest checks inside the images (see cri-tools images/ and
pkg/validate/) and how each stand-in meets it:
  e2e-test-images/busybox:1.29-2   busybox with every applet on PATH, the
                                   busybox image's /etc/passwd and /etc/group.
  e2e-test-images/nginx:1.14-2     HTTP 200 on port 80; /var/run/nginx.pid
                                   holds the pid of a process named "nginx";
                                   /proc/1/cmdline contains "master process"
                                   when the container has its own pid ns.
  k8s-staging-cri-tools/hostnet-nginx-amd64
                                   the same, listening on port 12003 (meant
                                   for the host network).
  e2e-test-images/httpd:2.4.39-4   HTTP 200 on port 80 and the log line
                                   "httpd -D FOREGROUND" (apache's AH00094).
  e2e-test-images/nonewprivs:1.3   a setuid-root program printing
                                   "Effective uid: <euid>" (busybox drops its
                                   setuid bit itself, so this one is a tiny C
                                   program built with cc -static).
  k8s-staging-cri-tools/test-image-*
                                   user images (USER 1002, www-data,
                                   1003:1004, www-data:1004), the predefined
                                   group image (USER 1000, in group 50000),
                                   and busybox plus a file named after the
                                   image, so that distinct images differ.
  pause:3.9                        pulled as registry.k8s.io/pause:3.9 and
                                   k8s.gcr.io/pause:3.9 (the same image from
                                   two registries: one id, both tags, and
                                   removing one name removes the image); run
                                   with its default entrypoint, so /pause is
                                   a static C program that waits for SIGTERM
                                   or SIGINT, as the real one does (USER
                                   65535:65535 as well).
test-image-digest@sha256:9700... cannot be rebuilt byte for byte: not mirrored.
"""
import os
import platform
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import registry  # noqa: E402  (test/e2e/registry.py)

K8S = "e2e-test-images/"            # registry.k8s.io/e2e-test-images/...
CRI = "k8s-staging-cri-tools/"      # gcr.io/k8s-staging-cri-tools/...
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le",
          "s390x": "s390x"}.get(platform.machine(), platform.machine())

# The busybox image's account files (docker.io/library/busybox), which the
# e2e busybox image inherits; www-data (33) matters for the username tests.
PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""


# Debian's busybox-static has no ipcs and no pgrep applet; critest runs
# "ipcs -m" (looks for a segment id) and "pgrep sleep" (expects no output once
# the sleep is gone). Minimal stand-ins reading /proc, which shows the caller's
# IPC namespace in /proc/sysvipc.
IPCS_SCRIPT = """#!/bin/sh
# ipcs -m only: the shared memory segments of this IPC namespace.
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size cpid lpid nattch uid rest; do
    echo "$key $shmid $uid $perms $size $nattch"
done
"""
PGREP_SCRIPT = """#!/bin/sh
# pgrep PATTERN: pids whose process name contains PATTERN (not this one's).
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
found=1
for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    read -r comm < "$dir/comm" 2>/dev/null || continue
    case "$comm" in *"$1"*) echo "$pid"; found=0 ;; esac
done
exit $found
"""


def f(name, data, mode=0o644, **opts):
    """A regular file entry for registry.tar_bytes."""
    opts["mode"] = mode
    return (name, "file", data, opts)


def d(name, mode=0o755):
    return (name, "dir", None, {"mode": mode})


def busybox_base():
    """Layer 1 of every image: busybox-static with all its applets hard-linked
    at the paths busybox itself names (--list-full), as in the busybox image
    (hard links, not symlinks: critest masks /bin/ls and expects only ls to
    go), the two applets Debian's build lacks as scripts, and the account
    files."""
    with open(registry.BUSYBOX, "rb") as fh:
        bb = fh.read()
    applets = subprocess.run([registry.BUSYBOX, "--list-full"], stdout=subprocess.PIPE,
                             check=True, text=True).stdout.split()
    entries = [d("bin"), d("sbin"), d("usr"), d("usr/bin"), d("usr/sbin"), d("etc"),
               d("root", 0o700), d("home"), d("var"), d("var/run"), d("var/www"),
               d("tmp", 0o1777), f("bin/busybox", bb, 0o755)]
    for path in sorted(set(applets)):
        if path != "bin/busybox":
            entries.append((path, "hardlink", "bin/busybox", {}))
    entries += [f("bin/ipcs", IPCS_SCRIPT, 0o755), f("bin/pgrep", PGREP_SCRIPT, 0o755),
                f("etc/passwd", PASSWD), f("etc/group", GROUP)]
    return registry.tar_bytes(entries)


# A stand-in for nginx: records its pid like nginx's master does, serves the
# docroot with busybox httpd (in the background, so that this script, whose
# process name is "nginx", stays the master), and stops on SIGTERM. The image
# runs it with a trailing "master process" argument, ignored here, so that
# /proc/<pid>/cmdline reads like nginx's retitled master process.
NGINX_SCRIPT = """#!/bin/sh
echo $$ > /var/run/nginx.pid
httpd -f -p %d -h /usr/share/nginx/html &
trap 'kill $!; exit 0' TERM INT QUIT
wait
"""
NGINX_CMD = ["nginx", "-g", "daemon off;", "master process"]

# A stand-in for the httpd image's httpd-foreground: apache logs its command
# line at startup (AH00094), which critest looks for in the container log.
HTTPD_SCRIPT = """#!/bin/sh
echo "[core:notice] AH00094: Command line: 'httpd -D FOREGROUND'" >&2
exec httpd -f -p 80 -h /usr/local/apache2/htdocs
"""

NNP_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("Effective uid: %d\n", (int)geteuid()); return 0; }
"""

PAUSE_C = r"""
#include <signal.h>
#include <unistd.h>
static void on_signal(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (;;)
        pause();
}
"""

ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def web_layer(port):
    return registry.tar_bytes([
        d("usr"), d("usr/sbin"), f("usr/sbin/nginx", NGINX_SCRIPT % port, 0o755),
        d("usr/share"), d("usr/share/nginx"), d("usr/share/nginx/html"),
        f("usr/share/nginx/html/index.html", "<h1>Welcome to nginx!</h1>\n"),
        d("var"), d("var/run")])


def httpd_layer():
    return registry.tar_bytes([
        d("usr"), d("usr/local"), d("usr/local/bin"),
        f("usr/local/bin/httpd-foreground", HTTPD_SCRIPT, 0o755),
        d("usr/local/apache2"), d("usr/local/apache2/htdocs"),
        f("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n")])


def compile_static(work, name, source):
    """A static binary built from C source, or None without cc."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    src, out = os.path.join(work, name + ".c"), os.path.join(work, name)
    with open(src, "w") as fh:
        fh.write(source)
    if subprocess.run([cc, "-static", "-O2", "-o", out, src]).returncode != 0:
        return None
    with open(out, "rb") as fh:
        return fh.read()


def nonewprivs_layer(work):
    """The setuid-root program of the nonewprivs image, or None without cc."""
    binary = compile_static(work, "nnp", NNP_C)
    if binary is None:
        return None
    return registry.tar_bytes([d("usr"), d("usr/local"), d("usr/local/bin"),
                               f("usr/local/bin/nnp", binary, 0o4755)])


def pause_layer(work):
    """The pause image's only file, /pause, or None without cc."""
    binary = compile_static(work, "pause", PAUSE_C)
    if binary is None:
        return None
    return registry.tar_bytes([f("pause", binary, 0o755)])


def marker_layer(name):
    """An empty file named after the image, as cri-tools' image-test does."""
    return registry.tar_bytes([f(name, b"")])


def predefined_group_layer():
    """adduser -u 1000 default-user; addgroup -g 50000 group-defined-in-image;
    addgroup default-user group-defined-in-image -- as account file lines."""
    return registry.tar_bytes([
        d("etc"), d("home"), d("home/default-user", 0o755),
        f("etc/passwd", PASSWD + "default-user:x:1000:1000::/home/default-user:/bin/sh\n"),
        f("etc/group", GROUP + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")])


def build(reg, work):
    base = busybox_base()

    def push(repo, tags, extra_layers=(), **config):
        config.setdefault("Env", ENV)
        layers = [base] + list(extra_layers)
        for tag in tags:
            registry.push_image(reg, repo, tag, layers, arch=GOARCH, config_extra=config)

    push(K8S + "busybox", ["1.29-2"])
    push(K8S + "nginx", ["1.14-2"], [web_layer(80)], Cmd=NGINX_CMD, ExposedPorts={"80/tcp": {}},
         StopSignal="SIGTERM")
    push(CRI + "hostnet-nginx-" + GOARCH, ["latest"], [web_layer(12003)], Cmd=NGINX_CMD,
         StopSignal="SIGTERM")
    push(K8S + "httpd", ["2.4.39-4"], [httpd_layer()], Cmd=["httpd-foreground"],
         ExposedPorts={"80/tcp": {}})
    nnp = nonewprivs_layer(work)
    if nnp is not None:
        push(K8S + "nonewprivs", ["1.3"], [nnp], Cmd=None, Entrypoint=["/usr/local/bin/nnp"])
    else:
        print("mirror.py: no C compiler: nonewprivs:1.3 not mirrored", file=sys.stderr)

    pause = pause_layer(work)
    if pause is not None:
        # Its own single layer, as the real pause image (no busybox).
        registry.push_image(reg, "pause", "3.9", [pause], arch=GOARCH, config_extra={
            "Env": ENV, "Cmd": None, "Entrypoint": ["/pause"], "User": "65535:65535"})
    else:
        print("mirror.py: no C compiler: pause:3.9 not mirrored", file=sys.stderr)

    for name, user in (("test-image-user-uid", "1002"), ("test-image-user-username", "www-data"),
                       ("test-image-user-uid-group", "1003:1004"),
                       ("test-image-user-username-group", "www-data:1004")):
        push(CRI + name, ["latest"], User=user)
    push(CRI + "test-image-predefined-group", ["latest"], [predefined_group_layer()], User="1000")

    # Distinct images: each carries its own marker file.
    for name in ("test-image-1", "test-image-2", "test-image-3", "test-image-latest"):
        push(CRI + name, ["latest"], [marker_layer(name)])
    # One image under several tags.
    push(CRI + "test-image-tags", ["1", "2", "3"], [marker_layer("test-image-tags")])
    push(CRI + "test-image-tag", ["test", "all"], [marker_layer("test-image-tag")])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mirror.py WORKDIR")
    work = os.path.abspath(sys.argv[1])
    os.makedirs(work, exist_ok=True)
    reg = registry.Registry(os.path.join(work, "registry"))
    try:
        build(reg, work)
    except BaseException:
        reg.stop()
        raise
    with open(os.path.join(work, "mirror.env"), "w") as fh:
        fh.write("MIRROR_HOST=%s\nMIRROR_PID=%d\n" % (reg.host, reg.proc.pid))


if __name__ == "__main__":
    main()
