"""Small clients for the streaming server, written for the tests: a SPDY/3.1
client (zlib header blocks with the SPDY/3 dictionary through Python's zdict)
speaking the k8s remotecommand/portforward stream conventions, and an RFC 6455
WebSocket client speaking the k8s channel protocols. Both work on a plain
socket so tests can also misbehave on purpose (stop reading, drop the
connection, send bad frames)."""
import base64
import hashlib
import os
import socket
import ssl
import struct
import zlib
from urllib.parse import urlsplit

# ---- SPDY/3 dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1) ----
_DICT_NAMES = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status").split() + ["200 OK", "version", "HTTP/1.1", "url",
                                                      "public", "set-cookie", "keep-alive",
                                                      "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
    "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
    "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICT = b"".join(struct.pack(">I", len(n)) + n.encode() for n in _DICT_NAMES) + \
    _DICT_TAIL.encode()
assert len(SPDY_DICT) == 1423 and zlib.adler32(SPDY_DICT) == 0xE3C6A7C2

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
FIN = 1


class HttpResponse:
    def __init__(self, status, headers, body, rest):
        self.status, self.headers, self.body, self.rest = status, headers, body, rest

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def http_request(url, method="GET", headers=(), timeout=10, tls=None, source=None):
    """Sends one request; returns (socket, HttpResponse). The body is read
    only for non-101 replies (Content-Length). An https:// URL is spoken
    over TLS with the ssl.SSLContext tls (default: the system's). source:
    the local IP address to connect from (default: the kernel's choice)."""
    u = urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    if u.scheme == "https":
        s = (tls or ssl.create_default_context()).wrap_socket(s, server_hostname=u.hostname)
    path = u.path + ("?" + u.query if u.query else "")
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (u.hostname, u.port)]
    lines += ["%s: %s" % kv for kv in headers]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    first, *hlines = head.decode("latin1").split("\r\n")
    status = int(first.split()[1])
    hdrs = [tuple(x.strip() for x in l.split(":", 1)) for l in hlines]
    resp = HttpResponse(status, hdrs, b"", rest)
    if status != 101:
        n = int((resp.header("Content-Length") or ["0"])[0])
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        resp.body, resp.rest = rest[:n], b""
    return s, resp


class SpdyClient:
    """The client side of a SPDY/3.1 session (odd stream ids, as spdystream)."""

    def __init__(self, sock, rest=b""):
        self.sock = sock
        self.buf = rest
        self.next_id = 1
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                        zlib.Z_DEFAULT_STRATEGY, SPDY_DICT)
        self.inflate = zlib.decompressobj(zdict=SPDY_DICT)
        self.data = {}       # stream id -> bytes received
        self.fin = set()     # streams the server ended
        self.replied = set()  # SYN_REPLY seen
        self.reset = {}      # stream id -> RST status
        self.pings = []
        self.goaway = None
        self.closed = False
        self.keep_data = True  # False: data frames are not stored (still counted)
        # Every data frame is counted and hashed per stream whoever reads it
        # (open_stream and read_until read frames too): a test that checks
        # a big output uses these, so frames read while it waited for a
        # reply are not missed.
        self.received = {}   # stream id -> bytes of data received
        self.digest = {}     # stream id -> hashlib.sha256 of those bytes

    # -- encoding --
    def header_block(self, headers):
        raw = struct.pack(">I", len(headers))
        for k, v in headers:
            raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def control(self, ftype, flags, payload):
        return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload

    def send_syn(self, headers, flags=0):
        sid = self.next_id
        self.next_id += 2
        body = struct.pack(">IIH", sid, 0, 0) + self.header_block(headers)
        self.sock.sendall(self.control(SYN_STREAM, flags, body))
        return sid

    def open_stream(self, headers, flags=0, wait=True):
        sid = self.send_syn(headers, flags)
        while wait and sid not in self.replied and sid not in self.reset:
            self.read_frame()
        return sid

    def send_data(self, sid, data, fin=False):
        self.sock.sendall(struct.pack(">II", sid & 0x7FFFFFFF, ((FIN if fin else 0) << 24) |
                                      len(data)) + data)

    def send_ping(self, pid):
        self.sock.sendall(self.control(PING, 0, struct.pack(">I", pid)))

    def send_rst(self, sid, status=5):
        self.sock.sendall(self.control(RST_STREAM, 0, struct.pack(">II", sid, status)))

    # -- decoding --
    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                self.closed = True
                raise ConnectionError("server closed the connection")
            self.buf = self.buf + chunk

    def read_frame(self):
        self._need(8)
        length = int.from_bytes(self.buf[5:8], "big")
        self._need(8 + length)
        head, payload = self.buf[:8], self.buf[8:8 + length]
        self.buf = self.buf[8 + length:]
        flags = head[4]
        if head[0] & 0x80:
            ftype = int.from_bytes(head[2:4], "big")
            if ftype in (SYN_REPLY, HEADERS):
                sid = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                self.parse_headers(payload[4:])
                self.replied.add(sid)
                if flags & FIN:
                    self.fin.add(sid)
            elif ftype == RST_STREAM:
                sid, status = struct.unpack(">II", payload)
                self.reset[sid & 0x7FFFFFFF] = status
            elif ftype == PING:
                self.pings.append(struct.unpack(">I", payload)[0])
            elif ftype == GOAWAY:
                self.goaway = struct.unpack(">II", payload)
            return ("control", ftype, flags, payload)
        sid = int.from_bytes(head[:4], "big") & 0x7FFFFFFF
        self.received[sid] = self.received.get(sid, 0) + len(payload)
        self.digest.setdefault(sid, hashlib.sha256()).update(payload)
        if self.keep_data:
            self.data.setdefault(sid, bytearray()).extend(payload)
        if flags & FIN:
            self.fin.add(sid)
        return ("data", sid, flags, payload)

    def parse_headers(self, block):
        raw = self.inflate.decompress(block)
        n = struct.unpack(">I", raw[:4])[0]
        pos, out = 4, []
        for _ in range(n):
            kl = struct.unpack(">I", raw[pos:pos + 4])[0]
            k = raw[pos + 4:pos + 4 + kl].decode()
            pos += 4 + kl
            vl = struct.unpack(">I", raw[pos:pos + 4])[0]
            out.append((k, raw[pos + 4:pos + 4 + vl].decode()))
            pos += 4 + vl
        return out

    def read_until(self, pred):
        """Reads frames until pred() holds or the server closes."""
        try:
            while not pred():
                self.read_frame()
        except ConnectionError:
            pass
        return pred()

    def close(self):
        self.sock.close()


def spdy_connect(url, protocols, method="POST", extra_headers=(), tls=None, source=None):
    headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
    headers += [("X-Stream-Protocol-Version", p) for p in protocols] + list(extra_headers)
    sock, resp = http_request(url, method, headers, tls=tls, source=source)
    if resp.status != 101:
        sock.close()
        return None, resp
    return SpdyClient(sock, resp.rest), resp


def exec_streams(c, stdin=False, stdout=True, stderr=True, tty=False):
    """Opens the streams kubectl's v4 client opens, in its order."""
    ids = {"error": c.open_stream([("streamtype", "error")])}
    for name, want in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr and not tty)):
        if want:
            ids[name] = c.open_stream([("streamtype", name)])
    if tty:
        ids["resize"] = c.open_stream([("streamtype", "resize")])
    return ids


# ---- WebSocket ----

class WsClient:
    def __init__(self, sock, protocol, rest=b""):
        self.sock, self.protocol, self.buf = sock, protocol, rest
        self.base64 = "base64" in (protocol or "")
        self.close_code = None

    def send_frame(self, opcode, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack(">BB", b0, m | n)
        elif n < 65536:
            head = struct.pack(">BBH", b0, m | 126, n)
        else:
            head = struct.pack(">BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send_channel(self, ch, data, fragments=1):
        if self.base64:
            msg = chr(ord("0") + ch).encode() + base64.b64encode(data)
            op = 1
        else:
            msg = bytes([ch]) + data
            op = 2
        if fragments <= 1:
            self.send_frame(op, msg)
            return
        step = max(1, len(msg) // fragments)
        parts = [msg[i:i + step] for i in range(0, len(msg), step)]
        for i, p in enumerate(parts):
            self.send_frame(op if i == 0 else 0, p, fin=i == len(parts) - 1)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def read_frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, pos = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, pos = struct.unpack(">Q", self.buf[2:10])[0], 10
        assert not b1 & 0x80, "server frames must not be masked"
        self._need(pos + n)
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        return b0 & 0x80 != 0, b0 & 0x0F, payload

    def read_message(self):
        """(channel, data) for data messages, ('close', code) or ('pong', p)."""
        fin, op, payload = self.read_frame()
        if op == 8:
            self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            return "close", self.close_code
        if op == 10:
            return "pong", payload
        while not fin:
            fin, _, more = self.read_frame()
            payload += more
        if self.base64:
            return payload[0] - ord("0"), base64.b64decode(payload[1:])
        return payload[0], payload[1:]

    def collect(self, limit=1000):
        """Reads messages until close; returns ({channel: bytes}, [messages])."""
        out, msgs = {}, []
        try:
            for _ in range(limit):
                m = self.read_message()
                msgs.append(m)
                if m[0] == "close":
                    break
                if isinstance(m[0], int):
                    out[m[0]] = out.get(m[0], b"") + m[1]
        except ConnectionError:
            pass
        return out, msgs

    def close(self):
        self.sock.close()


def ws_connect(url, protocols, extra_headers=(), tls=None):
    key = base64.b64encode(os.urandom(16)).decode()
    headers = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
               ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key)]
    if protocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
    sock, resp = http_request(url.replace("ws://", "http://").replace("wss://", "https://"),
                              "GET", headers + list(extra_headers), tls=tls)
    if resp.status != 101:
        sock.close()
        return None, resp
    want = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert resp.header("Sec-WebSocket-Accept") == [want], resp.headers
    proto = (resp.header("Sec-WebSocket-Protocol") or [""])[0]
    return WsClient(sock, proto, resp.rest), resp
