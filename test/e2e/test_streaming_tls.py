"""Streaming server over TLS (streaming.tls_cert/tls_key/tls_client_ca): the
real daemon with the fake streaming backend (CRICKET_TEST_HOOK_STREAMING,
see test_streaming.py), certificates made with the openssl CLI in a temp
dir: a CA, a server certificate for 127.0.0.1 (IP SAN, serverAuth) and a
client certificate (clientAuth), plus a second CA and a client certificate
of it that the server must not accept."""
import hashlib
import json
import os
import shutil
import ssl
import subprocess

import pytest

import streaming_clients as sc
from conftest import Cri, run_cricketd
from test_streaming import HOOK, V4, Httpd, del_netns, http_body, make_netns, status_json

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="no openssl CLI")


def openssl(*args):
    subprocess.run([OPENSSL] + list(args), check=True, capture_output=True)


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, crt


def make_leaf(d, name, ca, ext):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    csr, extfile = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
    with open(extfile, "w") as f:
        f.write(ext)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", extfile)
    return key, crt


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca, other = make_ca(d, "ca"), make_ca(d, "other-ca")
    p = {"dir": d, "ca": ca, "other_ca": other}
    p["server"] = make_leaf(d, "server", ca, "subjectAltName=IP:127.0.0.1\n"
                            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    client_ext = "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    p["client"] = make_leaf(d, "client", ca, client_ext)
    p["stranger"] = make_leaf(d, "stranger", other, client_ext)
    return p


def tls_config(p, client_ca=True):
    text = "streaming:\n  tls_cert: %s\n  tls_key: %s\n" % (p["server"][1], p["server"][0])
    if client_ca:
        text += "  tls_client_ca: %s\n" % p["ca"][1]
    return text


def ctx(p, cert=None, trust="ca"):
    """A client context trusting `trust`'s CA, presenting cert (a pki key)."""
    c = ssl.create_default_context(cafile=p[trust][1])
    if cert:
        c.load_cert_chain(p[cert][1], p[cert][0])
    return c


@pytest.fixture
def tls_daemon(daemon_factory, pki):
    d = daemon_factory(tls_config(pki), env=HOOK)
    c = Cri(d.socket)
    yield d, c
    c.close()
    assert d.stop() == 0, d.logs()


def base_url(cri):
    info = cri.call("Status", verbose=True).info
    return json.loads(info["streamingURL"]), json.loads(info["streamingPort"])


def spdy_exec(cri, tls, cmd, stdin_data=None):
    url = cri.call("Exec", container_id="fake-1", cmd=cmd, stdout=True, stderr=True,
                   stdin=stdin_data is not None).url
    assert url.startswith("https://127.0.0.1:")
    c, resp = sc.spdy_connect(url, V4, tls=tls)
    assert resp.status == 101
    ids = sc.exec_streams(c, stdin=stdin_data is not None)
    if stdin_data is not None:
        c.send_data(ids["stdin"], stdin_data, fin=True)
    c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    return c, ids


def test_tls_status_url_and_spdy_exec(tls_daemon, pki):
    d, cri = tls_daemon
    url, port = base_url(cri)
    assert url == "https://127.0.0.1:%d" % port
    assert "streaming server on https://127.0.0.1:%d" % port in d.logs()
    c, ids = spdy_exec(cri, ctx(pki, "client"), ["echo", "over", "tls"])
    assert c.data.get(ids["stdout"]) == b"over tls\n"
    assert status_json(c.data[ids["error"]]) == {"metadata": {}, "status": "Success"}
    # stdin round trip, 1 MiB through the TLS relay both ways
    blob = os.urandom(1 << 20)
    c, ids = spdy_exec(cri, ctx(pki, "client"), ["cat"], stdin_data=blob)
    assert hashlib.sha256(c.data.get(ids["stdout"], b"")).digest() == hashlib.sha256(blob).digest()
    c, ids = spdy_exec(cri, ctx(pki, "client"), ["exit", "3"])
    assert status_json(c.data[ids["error"]])["details"]["causes"][0]["message"] == "3"


def test_tls_websocket_exec(tls_daemon, pki):
    _, cri = tls_daemon
    url = cri.call("Exec", container_id="fake-1", cmd=["echo", "ws"], stdout=True).url
    w, resp = sc.ws_connect(url, ["v4.channel.k8s.io"], tls=ctx(pki, "client"))
    assert resp.status == 101 and w.protocol == "v4.channel.k8s.io"
    out, msgs = w.collect()
    w.close()
    assert out[1] == b"ws\n"
    assert status_json(out[3]) == {"metadata": {}, "status": "Success"}


def test_tls_spdy_portforward_into_netns(tls_daemon, pki, tmp_path):
    _, cri = tls_daemon
    ns = make_netns()
    srv = Httpd(str(tmp_path), "/run/netns/" + ns, size=4 << 20)
    try:
        url = cri.call("PortForward", pod_sandbox_id="fakens-" + ns).url
        assert url.startswith("https://127.0.0.1:")
        c, resp = sc.spdy_connect(url, ["portforward.k8s.io"], tls=ctx(pki, "client"))
        assert resp.status == 101
        hdr = [("port", "8080"), ("requestid", "0")]
        e = c.open_stream([("streamtype", "error")] + hdr)
        dsid = c.open_stream([("streamtype", "data")] + hdr)
        c.send_data(dsid, b"GET /big HTTP/1.0\r\n\r\n", fin=True)
        c.read_until(lambda: dsid in c.fin and e in c.fin)
        c.close()
        assert c.data.get(e, b"") == b""
        assert http_body(c.data.get(dsid, b"")) == srv.body
    finally:
        srv.stop()
        del_netns(ns)


def test_tls_client_certificate_required(tls_daemon, pki):
    _, cri = tls_daemon
    url = cri.call("Exec", container_id="fake-1", cmd=["echo", "x"], stdout=True).url
    # no certificate, one from another CA, and the server's own (not for
    # client auth): 403 before the token is looked at
    for name in (None, "stranger", "server"):
        try:
            c, resp = sc.spdy_connect(url, V4, tls=ctx(pki, name))
        except (ssl.SSLError, ConnectionError) as e:  # a TLS 1.3 alert also refuses
            assert name is not None, e
            continue
        assert c is None and resp.status == 403, (name, resp.status)
        assert b"client certificate required" in resp.body
    w, resp = sc.ws_connect(url, ["v4.channel.k8s.io"], tls=ctx(pki))
    assert w is None and resp.status == 403
    # the token was not spent: the right client still gets in
    c, resp = sc.spdy_connect(url, V4, tls=ctx(pki, "client"))
    assert resp.status == 101
    c.close()


def test_tls_plain_http_and_untrusting_client_fail(tls_daemon, pki):
    _, cri = tls_daemon
    url = cri.call("Exec", container_id="fake-1", cmd=["echo", "x"], stdout=True).url
    with pytest.raises((ConnectionError, OSError)):
        sock, resp = sc.spdy_connect(url.replace("https://", "http://"), V4)
    with pytest.raises(ssl.SSLCertVerificationError):
        sc.spdy_connect(url, V4, tls=ctx(pki, "client", trust="other_ca"))
    # the daemon still serves the right client afterwards
    c, resp = sc.spdy_connect(url, V4, tls=ctx(pki, "client"))
    assert resp.status == 101
    c.close()


def test_tls_without_client_ca(daemon_factory, pki):
    d = daemon_factory(tls_config(pki, client_ca=False), env=HOOK)
    cri = Cri(d.socket)
    try:
        c, ids = spdy_exec(cri, ctx(pki), ["echo", "anyone"])
        assert c.data.get(ids["stdout"]) == b"anyone\n"
    finally:
        cri.close()
        assert d.stop() == 0, d.logs()


@pytest.mark.parametrize("text,want", [
    ("streaming:\n  tls_cert: {cert}\n", 'key "streaming.tls_cert": invalid value "{cert}": '
     "streaming.tls_key must be set too"),
    ("streaming:\n  tls_key: {key}\n  tls_client_ca: {ca}\n",
     'key "streaming.tls_key": invalid value "{key}": streaming.tls_cert must be set too'),
    ("streaming:\n  tls_cert: {cert}\n  tls_key: {dir}/missing.key\n",
     "read streaming.tls_key: "),
    ("streaming:\n  tls_cert: {ext}\n  tls_key: {key}\n", "is not a PEM file"),
    ("streaming:\n  tls_cert: {cert}\n  tls_key: {client_key}\n",
     "tls: load streaming.tls_cert and streaming.tls_key: "),
    ("streaming:\n  tls_cert: {cert}\n  tls_key: {key}\n  tls_client_ca: {key}\n",
     "tls: load streaming.tls_client_ca: "),
])
def test_tls_bad_config_fails_startup(daemon_factory, pki, text, want):
    f = dict(cert=pki["server"][1], key=pki["server"][0], ca=pki["ca"][1], dir=pki["dir"],
             ext=os.path.join(pki["dir"], "server.ext"), client_key=pki["client"][0])
    d = daemon_factory(text.format(**f), start=False)
    r = run_cricketd(["--config", d.config])
    assert r.returncode != 0
    assert want.format(**f) in r.stdout + r.stderr, r.stdout + r.stderr
