"""Registry request retries and OCI annotations, against a real registry.

A FaultProxy (the test proxy of registry.py, plus a queue of faults per
request path) answers 503, 429 with Retry-After, or drops the connection
before it forwards: the daemon must retry 429, 5xx and broken connections
at most 3 times with a bounded backoff, honour Retry-After, and never retry
other 4xx. Annotations of the OCI index and manifest come back merged in
Image.spec.annotations from ListImages and ImageStatus."""
import http.client
import json
import os
import socket
import time

import grpc
import pytest

import api_pb2
from conftest import Cri, listed, pull
from registry import (MT_OCI_INDEX, MT_OCI_MANIFEST, Proxy, busybox_layer, busybox_registry,
                      push_image, registry_config, tree_files)


class FaultProxy(Proxy):
    """faults: path suffix -> list of faults used up in order, each
    (status, headers), "reset" (close without answering) or "half" (half of
    the upstream's body, then close)."""

    def __init__(self, upstream_port):
        super().__init__(upstream_port)
        self.faults = {}
        self.hits = {}  # path suffix -> requests seen (faulted or forwarded)

    def handle(self, h):
        for suffix, queue in self.faults.items():
            if not h.path.endswith(suffix):
                continue
            with self.lock:
                self.hits[suffix] = self.hits.get(suffix, 0) + 1
                fault = queue.pop(0) if queue else None
            if fault == "half":  # half the blob, then the connection drops
                c = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
                c.request("GET", h.path)
                body = c.getresponse().read()
                c.close()
                h.send_response(200)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body[:len(body) // 2])
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)
                h.close_connection = True
                return
            if fault == "reset":
                h.connection.shutdown(socket.SHUT_RDWR)
                h.close_connection = True
                return
            if fault is not None:
                status, headers = fault
                body = json.dumps({"errors": [{"code": "UNAVAILABLE",
                                               "message": "injected %d" % status}]}).encode()
                return self._send(h, status, body, headers)
        return super().handle(h)


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-reg-retry-") as r:
        yield r

@pytest.fixture
def faulty(daemon_factory, reg):
    p = FaultProxy(reg.port)
    d = daemon_factory(config_text=registry_config(p.host))
    c = Cri(d.socket)
    yield d, c, p
    c.close()
    p.stop()
    assert d.stop() == 0, d.logs()


def blobs(root):
    return tree_files(root + "/blobs/sha256") + tree_files(root + "/blobs/ingest")


MANIFEST = "/manifests/latest"


def test_503_twice_then_forwarded(faulty, reg):
    d, cri, p = faulty
    p.faults[MANIFEST] = [(503, {}), (503, {})]
    t0 = time.monotonic()
    assert pull(cri, "busybox") == reg.busybox.id
    assert p.hits[MANIFEST] == 3
    assert time.monotonic() - t0 >= 0.25 + 0.5  # backed off 250 ms, then 500 ms


def test_blob_5xx_and_reset_retried(faulty, reg):
    d, cri, p = faulty
    layer = reg.busybox.layer_digests[0]
    p.faults[layer] = [(502, {}), "reset"]
    p.faults[reg.busybox.id] = [(500, {})]  # the config blob
    assert pull(cri, "busybox") == reg.busybox.id
    assert p.hits[layer] == 3 and p.hits[reg.busybox.id] == 2


def test_blob_cut_mid_body_retried_while_unpacking(faulty, reg):
    """The layer is unpacked while it downloads; the first transfer breaks
    after half the blob. The retry starts the blob again, the unpack of the
    broken transfer is thrown away and the layer is unpacked once the blob
    is whole: the image is complete and nothing is left in ingest/ or
    layers/tmp/."""
    d, cri, p = faulty
    layer = reg.busybox.layer_digests[0]
    p.faults[layer] = ["half"]
    assert pull(cri, "busybox") == reg.busybox.id
    assert p.hits[layer] == 2
    assert "download restarted, unpacking it again from the blob" in d.logs()
    info = json.loads(cri.call("ImageStatus", image=api_pb2.ImageSpec(image="busybox"),
                               verbose=True).info["info"])
    top = info["layerDirs"][0]
    assert os.access(os.path.join(top, "bin/busybox"), os.X_OK)
    assert os.readlink(os.path.join(top, "bin/sh")) == "busybox"
    assert tree_files(d.root + "/blobs/ingest") == []
    assert tree_files(d.root + "/layers/tmp") == []


def test_429_honours_retry_after(faulty, reg):
    d, cri, p = faulty
    p.faults[MANIFEST] = [(429, {"Retry-After": "2"})]
    t0 = time.monotonic()
    assert pull(cri, "busybox") == reg.busybox.id
    assert time.monotonic() - t0 >= 2.0
    assert p.hits[MANIFEST] == 2


def test_retry_after_is_capped(faulty, reg):
    d, cri, p = faulty
    p.faults[MANIFEST] = [(503, {"Retry-After": "3600"})]
    t0 = time.monotonic()
    assert pull(cri, "busybox") == reg.busybox.id
    assert time.monotonic() - t0 < 10 + 5  # REGISTRY_RETRY_MAX_MS, not an hour


def test_gives_up_after_three_attempts(faulty, reg):
    d, cri, p = faulty
    p.faults[MANIFEST] = [(503, {})] * 5
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "busybox")
    assert p.hits[MANIFEST] == 3
    assert "HTTP 503" in e.value.details() and p.host in e.value.details()
    assert listed(cri) == [] and blobs(d.root) == []


@pytest.mark.parametrize("status", [400, 403, 404, 501])
def test_other_4xx_not_retried(faulty, reg, status):
    d, cri, p = faulty
    p.faults[MANIFEST] = [(status, {})] * 3
    with pytest.raises(grpc.RpcError) as e:
        pull(cri, "busybox")
    assert p.hits[MANIFEST] == 1
    assert "HTTP %d" % status in e.value.details()


# ---- annotations ----

def push_annotated(reg):
    """busybox as `annotated:plain` (no annotations), again as `annotated:v1`
    with manifest annotations, and an index `annotated:multi` with its own
    (one key overridden by the manifest). One config: one image id."""
    img = push_image(reg, "library/annotated", "plain", [busybox_layer()])
    m = json.loads(img.manifest)
    m["annotations"] = {"org.opencontainers.image.title": "from-manifest", "m": "1"}
    body = json.dumps(m).encode()
    md = reg.push_manifest("library/annotated", "v1", body, MT_OCI_MANIFEST)
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
             "manifests": [{"mediaType": MT_OCI_MANIFEST, "digest": md, "size": len(body),
                            "platform": {"os": "linux", "architecture": "amd64"}}],
             "annotations": {"org.opencontainers.image.title": "from-index", "i": "2"}}
    reg.push_manifest("library/annotated", "multi", json.dumps(index).encode(), MT_OCI_INDEX)
    return img


def annotations(img):
    return dict(img.spec.annotations)


def status(cri, ref):
    return cri.call("ImageStatus", image=api_pb2.ImageSpec(image=ref)).image


def test_annotations_in_list_and_status(faulty, reg):
    d, cri, p = faulty
    img = push_annotated(reg)
    assert pull(cri, "annotated:plain") == img.id
    assert annotations(status(cri, "annotated:plain")) == {}
    assert pull(cri, "annotated:v1") == img.id
    assert annotations(status(cri, "annotated:v1")) == {
        "org.opencontainers.image.title": "from-manifest", "m": "1"}
    # the index adds its own; the manifest's value wins on the shared key
    assert pull(cri, "annotated:multi") == img.id
    want = {"org.opencontainers.image.title": "from-manifest", "m": "1", "i": "2"}
    assert annotations(status(cri, "annotated:multi")) == want
    [listed_img] = listed(cri)
    assert annotations(listed_img) == want
    # kept in the record: a restarted daemon returns them too
    cri.close()
    assert d.stop() == 0, d.logs()
    d.start()
    cri2 = Cri(d.socket)
    try:
        assert annotations(status(cri2, "annotated:v1")) == want
    finally:
        cri2.close()
