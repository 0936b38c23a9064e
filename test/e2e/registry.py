"""Registry fixtures for the image tests: Debian's docker-registry on
127.0.0.1 (random free port, temp storage, stopped by PID), an optional
fault-injecting proxy in front of it (bearer token server, request counts,
corrupted or stalled blobs), and images built here from busybox-static and
pushed through the registry HTTP API. Nothing ever leaves 127.0.0.1."""
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import base64
import contextlib

REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_D_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_port(port, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("port %d not open" % port)


class Registry:
    """docker-registry serving 127.0.0.1:<port> from a temp dir."""

    def __init__(self, base, htpasswd=None):
        self.base = base
        self.port = free_port()
        self.storage = os.path.join(base, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.config = os.path.join(base, "registry.yml")
        auth = ""
        if htpasswd:
            auth = ("auth:\n  htpasswd:\n    realm: cricket-test\n    path: %s\n" % htpasswd)
        with open(self.config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n"
                    "    enabled: true\nhttp:\n  addr: 127.0.0.1:%d\n%s"
                    % (self.storage, self.port, auth))
        self.log = open(os.path.join(base, "registry.log"), "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        self.host = "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # by PID
            self.proc.wait()
        self.log.close()

    # ---- pushing through the HTTP API ----
    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _headers(self, extra=None, auth=None):
        h = dict(extra or {})
        if auth:
            h["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        return h

    def push_blob(self, data, repo, auth=None):
        digest = sha256(data)
        c = self._conn()
        c.request("POST", "/v2/%s/blobs/uploads/" % repo, headers=self._headers(auth=auth))
        r = c.getresponse()
        r.read()
        assert r.status == 202, r.status
        loc = r.getheader("Location")
        sep = "&" if "?" in loc else "?"
        path = loc if loc.startswith("/") else "/" + loc.split("/", 3)[3]
        c.request("PUT", path + sep + "digest=" + digest, body=data,
                  headers=self._headers({"Content-Type": "application/octet-stream"}, auth))
        r = c.getresponse()
        r.read()
        assert r.status == 201, (r.status, digest)
        c.close()
        return digest

    def push_manifest(self, repo, ref, body, media_type, auth=None):
        c = self._conn()
        c.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                  headers=self._headers({"Content-Type": media_type}, auth))
        r = c.getresponse()
        text = r.read()
        assert r.status == 201, (r.status, text)
        c.close()
        return sha256(body)


# ---- image building ----

def tar_bytes(entries):
    """entries: list of (name, kind, payload, opts) with kind file/dir/symlink/
    hardlink/chardev; opts: mode, uid, gid, mtime, xattrs (PAX)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload, opts in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = opts.get("mode", 0o755 if kind == "dir" else 0o644)
            ti.uid = opts.get("uid", 0)
            ti.gid = opts.get("gid", 0)
            ti.mtime = opts.get("mtime", 1700000000)
            if opts.get("xattrs"):
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in opts["xattrs"].items()}
            data = None
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = payload
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = payload
            elif kind == "chardev":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = payload
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def busybox_layer():
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", "dir", None, {}), ("bin/busybox", "file", bb, {"mode": 0o755})]
    for applet in ("sh", "ls", "cat", "echo", "sleep", "id", "true"):
        entries.append(("bin/" + applet, "symlink", "busybox", {}))
    entries += [("etc", "dir", None, {}),
                ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n"
                 "www-data:x:33:33:www:/var/www:/bin/sh\n", {}),
                ("tmp", "dir", None, {"mode": 0o1777})]
    return tar_bytes(entries)


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, compresslevel=1, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, stdout=subprocess.PIPE,
                              check=True).stdout
    return raw


class Image:
    """An image pushed to a registry: ids and digests for assertions."""

    def __init__(self, config_digest, manifest_digest, layer_digests, diff_ids, manifest):
        self.id = config_digest
        self.manifest_digest = manifest_digest
        self.layer_digests = layer_digests
        self.diff_ids = diff_ids
        self.manifest = manifest


def push_image(reg, repo, tag, layers, compression="gzip", docker=False, config_extra=None,
               arch="amd64", auth=None, push_manifest=True, diff_ids_override=None):
    """layers: list of raw tar bytes (lowest first); diff_ids_override: the
    config's rootfs.diff_ids instead of the layers' (a lying config)."""
    if docker:
        layer_mt = MT_D_LAYER
    else:
        layer_mt = {"gzip": MT_OCI_LAYER_GZ, "zstd": MT_OCI_LAYER_ZSTD, "none": MT_OCI_LAYER}[
            compression]
    descs, diff_ids, digests = [], [], []
    for raw in layers:
        blob = compress(raw, "gzip" if docker else compression)
        d = reg.push_blob(blob, repo, auth)
        descs.append({"mediaType": layer_mt, "digest": d, "size": len(blob)})
        diff_ids.append(sha256(raw))
        digests.append(d)
    diff_ids = list(diff_ids_override) if diff_ids_override else diff_ids
    cfg = {"architecture": arch, "os": "linux",
           "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    for k, v in (config_extra or {}).items():
        cfg["config"][k] = v
    cfg_bytes = json.dumps(cfg).encode()
    cfg_digest = reg.push_blob(cfg_bytes, repo, auth)
    manifest = {"schemaVersion": 2,
                "mediaType": MT_D_MANIFEST if docker else MT_OCI_MANIFEST,
                "config": {"mediaType": MT_D_CONFIG if docker else MT_OCI_CONFIG,
                           "digest": cfg_digest, "size": len(cfg_bytes)},
                "layers": descs}
    body = json.dumps(manifest).encode()
    mt = MT_D_MANIFEST if docker else MT_OCI_MANIFEST
    md = reg.push_manifest(repo, tag if push_manifest else sha256(body), body, mt, auth)
    return Image(cfg_digest, md, digests, diff_ids, body)


def push_index(reg, repo, tag, images_by_platform, docker=False):
    """images_by_platform: list of ((arch, variant), Image)."""
    manifests = []
    for (arch, variant), img in images_by_platform:
        plat = {"architecture": arch, "os": "linux"}
        if variant:
            plat["variant"] = variant
        manifests.append({"mediaType": MT_D_MANIFEST if docker else MT_OCI_MANIFEST,
                          "digest": img.manifest_digest, "size": len(img.manifest),
                          "platform": plat})
    mt = MT_D_LIST if docker else MT_OCI_INDEX
    body = json.dumps({"schemaVersion": 2, "mediaType": mt, "manifests": manifests}).encode()
    return reg.push_manifest(repo, tag, body, mt)


# ---- a proxy in front of the registry ----

class Proxy:
    """Forwards to a registry; can demand bearer tokens (its own /token
    endpoint, basic-authenticated), count blob GETs, corrupt or stall blobs."""

    def __init__(self, upstream_port, bearer_users=None, basic_users=None, bind="127.0.0.1",
                 token_server=None):
        self.upstream = upstream_port
        self.bearer_users = bearer_users  # {"user": "pass"} or None
        self.basic_users = basic_users  # {"user": "pass"}: demand HTTP basic, or None
        self.token_server = token_server  # another Proxy: its /token is the realm
        self.seen_auth = []  # (path, Authorization header or None) of every request
        self.tokens = set()
        self.token_requests = 0
        self.blob_gets = {}
        self.corrupt = set()
        self.stall = {}  # digest -> seconds to sleep after half the body, or "abort"
        self.stalled = threading.Event()
        self.manifest_override = {}  # path -> (body, content type)
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.handle(self)

            def do_HEAD(self):
                proxy.handle(self)

        self.server = http.server.ThreadingHTTPServer((bind, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = "%s:%d" % (bind, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _send(self, h, status, body=b"", headers=None):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _token(self, h):
        with self.lock:
            self.token_requests += 1
        auth = h.headers.get("Authorization", "")
        ok = False
        if auth.startswith("Basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            ok = self.bearer_users.get(user) == pw
        if not ok:
            return self._send(h, 401, b'{"details":"bad credentials"}')
        tok = base64.b64encode(os.urandom(12)).decode()
        with self.lock:
            self.tokens.add(tok)
        body = json.dumps({"token": tok, "expires_in": 300}).encode()
        self._send(h, 200, body, {"Content-Type": "application/json"})

    def auth_headers(self):
        """The Authorization headers received (None entries dropped)."""
        with self.lock:
            return [a for _, a in self.seen_auth if a is not None]

    def _basic_ok(self, h):
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        return self.basic_users.get(user) == pw

    def handle(self, h):
        with self.lock:
            self.seen_auth.append((h.path, h.headers.get("Authorization")))
        if h.path.startswith("/token"):
            return self._token(h)
        if self.basic_users is not None and h.path != "/v2/" and not self._basic_ok(h):
            return self._send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                              {"WWW-Authenticate": 'Basic realm="cricket-test"'})
        if self.bearer_users is not None and h.path != "/v2/":
            auth = h.headers.get("Authorization", "")
            issuer = self.token_server or self
            if not (auth.startswith("Bearer ") and auth[7:] in issuer.tokens):
                repo = h.path.split("/")[2] + "/" + h.path.split("/")[3]
                chal = ('Bearer realm="http://%s/token",service="cricket-test",'
                        'scope="repository:%s:pull"' % (issuer.host, repo))
                return self._send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                  {"WWW-Authenticate": chal})
        if h.path in self.manifest_override:
            body, mt = self.manifest_override[h.path]
            return self._send(h, 200, body, {"Content-Type": mt})
        digest = h.path.rsplit("/", 1)[-1] if "/blobs/" in h.path else None
        if digest and h.command == "GET":
            with self.lock:
                self.blob_gets[digest] = self.blob_gets.get(digest, 0) + 1
        c = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        fwd = {k: v for k, v in h.headers.items() if k.lower() in ("accept",)}
        c.request(h.command, h.path, headers=fwd)
        r = c.getresponse()
        body = r.read()
        c.close()
        headers = {k: v for k, v in r.getheaders()
                   if k.lower() in ("content-type", "docker-content-digest", "location")}
        if digest in self.corrupt and body:
            body = bytes([body[0] ^ 0xff]) + body[1:]
        if digest in self.stall and h.command == "GET":
            h.send_response(r.status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:len(body) // 2])
            h.wfile.flush()
            if self.stall[digest] == "abort":  # the registry dies mid-blob
                h.connection.shutdown(socket.SHUT_RDWR)
                h.close_connection = True
                return
            self.stalled.set()
            time.sleep(self.stall[digest])
            try:
                h.wfile.write(body[len(body) // 2:])
            except OSError:
                pass
            return
        self._send(h, r.status, body, headers)


def registry_config(host, extra=""):
    """cricket config: docker.io (and 'test.local') served by host, insecure."""
    return ("image:\n  registries:\n    docker.io:\n      location: %s\n"
            "  insecure_registries: [\"%s\"]\n%s" % (host, host, extra))


def tree_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def make_tmp(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def temp_registry(prefix, htpasswd=None):
    """A Registry on a fresh temp dir named by prefix (htpasswd: a function
    of that dir that makes the htpasswd file and returns its path); stopped
    and removed on exit."""
    base = make_tmp(prefix)
    try:
        r = Registry(base, htpasswd=htpasswd(base) if htpasswd else None)
        try:
            yield r
        finally:
            r.stop()
    finally:
        rmtree(base)


@contextlib.contextmanager
def busybox_registry(prefix):
    """temp_registry() with busybox pushed as library/busybox:latest
    (r.busybox; its layer r.busybox_layer)."""
    with temp_registry(prefix) as r:
        r.busybox_layer = busybox_layer()
        r.busybox = push_image(r, "library/busybox", "latest", [r.busybox_layer])
        yield r


def store_leftovers(root, layers_tmp=True):
    """What an image store under root holds in blobs, ingest and layers
    (layers/tmp itself aside; its content too unless layers_tmp is False)."""
    out = (tree_files(os.path.join(root, "blobs/sha256")) +
           tree_files(os.path.join(root, "blobs/ingest")))
    if layers_tmp:
        out += tree_files(os.path.join(root, "layers/tmp"))
    return out + [f for f in tree_files(os.path.join(root, "layers")) if f != "tmp"]
