"""What a distribution and a service manager see (issue 16, packaging):
`cmake --install` lays out binaries, helpers, the documented config, the
systemd unit and man pages that cover every key and option; cricketd tells
systemd READY=1 once it serves and STOPPING=1 when it stops. The .deb itself
is checked on a clean Debian 12 by the package.deb ctest entry."""
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import CRICKETD

BUILD = os.path.dirname(CRICKETD)
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def yaml_keys(text):
    """Dotted keys of `cricketd config` output (maps of maps, lists skipped)."""
    keys, stack = [], []
    for line in text.splitlines():
        m = re.match(r"^(\s*)([a-z_][a-z0-9_.-]*):", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        keys.append(".".join(stack))
    return keys


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = subprocess.run(["cmake", "--install", BUILD], env=dict(os.environ, DESTDIR=dest),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cache = open(os.path.join(BUILD, "CMakeCache.txt")).read()
    prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
    return dest, prefix


def test_install_tree(installed):
    dest, prefix = installed
    p = lambda *a: os.path.join(dest + prefix, *a)  # noqa: E731
    for f in (p("bin", "cricketd"), p("libexec", "cricket", "cricket-conmon"),
              p("libexec", "cricket", "cricket-pause"), p("libexec", "cricket", "cricket-pull")):
        assert os.access(f, os.X_OK), f
    assert not os.path.exists(p("bin", "cricketd-test"))  # the hook build is not shipped
    assert not os.path.exists(p("libexec", "cricket", "cricket-pull-test"))
    with open(os.path.join(dest, "etc", "cricket", "cricket.yaml")) as f:
        assert f.read() == open(os.path.join(SRC, "conf", "cricket.yaml")).read()
    unit = open(p("lib", "systemd", "system", "cricket.service")).read()
    for line in ("Type=notify", "ExecStart=%s/bin/cricketd" % prefix, "KillMode=process",
                 "Delegate=yes", "LimitNOFILE=1048576"):
        assert re.search("^%s$" % re.escape(line), unit, re.M), line
    assert os.path.exists(p("share", "doc", "cricket", "crictl.yaml"))


def test_man_pages_cover_every_key_and_option(installed):
    dest, prefix = installed
    man5 = open(os.path.join(dest + prefix, "share", "man", "man5", "cricket.yaml.5")).read()
    man8 = open(os.path.join(dest + prefix, "share", "man", "man8", "cricketd.8")).read()
    conf = subprocess.run([CRICKETD, "config"], capture_output=True, text=True, check=True).stdout
    keys = [k for k in yaml_keys(conf) if not k.startswith("runtime.handlers.runc")]
    assert len(keys) > 30
    unescaped5 = man5.replace("\\-", "-").replace("\\e", "\\")
    missing = [k for k in keys
               if "\\fB%s\\fR" % k not in unescaped5 and ".SS %s\n" % k not in man5]
    assert not missing, "keys without a man page entry: %s" % missing
    help_text = subprocess.run([CRICKETD, "--help"], capture_output=True, text=True).stdout
    options = re.findall(r"--[a-z-]+", help_text)
    unescaped8 = man8.replace("\\-", "-")
    assert options and all(o in unescaped8 for o in options)
    assert '.TH CRICKETD 8' in man8 and '.TH CRICKET.YAML 5' in man5
    for page in (man5, man8):  # renders without roff warnings
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page,
                           capture_output=True, text=True)
        if r.returncode == 127:
            pytest.skip("groff missing")
        assert r.stderr == "", r.stderr


def test_installed_daemon_finds_helpers_in_libexec(installed):
    dest, prefix = installed
    r = subprocess.run([os.path.join(dest + prefix, "bin", "cricketd"), "config"],
                       capture_output=True, text=True, check=True)
    assert "conmon_path: %s/libexec/cricket/cricket-conmon" % prefix in r.stdout
    assert "pause_path: %s/libexec/cricket/cricket-pause" % prefix in r.stdout
    # a build tree keeps finding the helpers beside cricketd
    r = subprocess.run([CRICKETD, "config"], capture_output=True, text=True, check=True)
    assert "conmon_path: %s/cricket-conmon" % BUILD in r.stdout


@pytest.mark.parametrize("abstract", [False, True])
def test_sd_notify_ready_and_stopping(daemon_factory, tmpbase, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "@cricket-notify-%d" % os.getpid()
        sock.bind("\0" + name[1:])
    else:
        name = os.path.join(tmpbase, "notify.sock")
        sock.bind(name)
    sock.settimeout(20)
    try:
        d = daemon_factory(env={"NOTIFY_SOCKET": name}, start=False)
        d.start(wait=False)
        msg = sock.recv(4096).decode()
        assert msg == "READY=1"
        assert os.path.exists(d.socket)  # ready means serving
        d.proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert d.proc.wait(timeout=30) == 0
    finally:
        sock.close()


def test_bad_notify_socket_is_not_fatal(daemon_factory):
    d = daemon_factory(env={"NOTIFY_SOCKET": "relative/nonsense"})
    assert "NOTIFY_SOCKET" in d.logs()
    assert d.stop() == 0
