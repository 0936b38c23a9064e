"""CDI devices (ContainerConfig.CDI_devices, issue 13): JSON specs from
runtime.cdi_spec_dirs (here two temporary dirs standing for /etc/cdi and
/var/run/cdi) resolved into device nodes, mounts and env; the later dir
wins; broken spec files are skipped; an unknown device, a malformed name
and edits cricket cannot apply are refused naming the device, with nothing
left behind."""
import json
import os

import grpc
import pytest

import api_pb2
from registry import registry_config
from test_container import Pod, expect_error, reg  # noqa: F401 (fixture)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)


def write_spec(d, name, kind, devices, edits=None):
    spec = {"cdiVersion": "0.6.0", "kind": kind, "devices": devices}
    if edits:
        spec["containerEdits"] = edits
    with open(os.path.join(d, name), "w") as f:
        json.dump(spec, f)


@pytest.fixture
def cdi(envf, reg):
    env = envf(extra_config=registry_config(reg.host))
    etc, run = os.path.join(env.base, "etc-cdi"), os.path.join(env.base, "run-cdi")
    data = os.path.join(env.base, "cdi-data")
    for d in (etc, run, data):
        os.makedirs(d)
    with open(os.path.join(data, "f"), "w") as f:
        f.write("from-cdi\n")
    dropins = os.path.join(env.base, "cricket.d")
    os.makedirs(dropins, exist_ok=True)
    with open(os.path.join(dropins, "50-cdi.yaml"), "w") as f:
        f.write("runtime:\n  cdi_spec_dirs: [%s, %s]\n" % (etc, run))
    env.restart()
    p = Pod(env, reg)
    p.etc, p.run_dir, p.data = etc, run, data
    with open(os.path.join(etc, "00-broken.json"), "w") as f:
        f.write("{not json")
    write_spec(etc, "10-test.json", "example.com/test", [
        {"name": "null0", "containerEdits": {
            "deviceNodes": [{"path": "/dev/cdi-null", "hostPath": "/dev/null"}],
            "env": ["CDI_DEV=null0"]}},
        {"name": "zero0", "containerEdits": {
            "deviceNodes": [{"path": "/dev/cdi-zero", "hostPath": "/dev/zero",
                             "permissions": "rw"}]}},
    ], edits={"env": ["CDI_SPEC=1"],
              "mounts": [{"hostPath": data, "containerPath": "/cdi-data",
                          "options": ["ro", "bind"]}]})
    yield p
    for c in p.list():
        p.remove(c.id)
    assert p.list() == []
    ctr_dir = os.path.join(env.daemon.root, "containers")
    assert not os.path.isdir(ctr_dir) or os.listdir(ctr_dir) == []


def devices(*names):
    return [api_pb2.CDIDevice(name=n) for n in names]


SCRIPT = ("ls -l /dev/cdi-null /dev/cdi-zero 2>&1 | cut -c1; echo $CDI_DEV $CDI_SPEC;"
          " cat /cdi-data/f; touch /cdi-data/x 2>/dev/null && echo rw || echo ro")


def test_devices_mounts_env(cdi):
    cid = cdi.run("c", command=["sh", "-c", SCRIPT],
                  CDI_devices=devices("example.com/test=null0", "example.com/test=zero0"))
    assert cdi.output(cid) == ["c", "c", "null0 1", "from-cdi", "ro"]
    assert not os.path.exists(os.path.join(cdi.data, "x"))


def test_later_dir_wins(cdi):
    write_spec(cdi.run_dir, "10-test.json", "example.com/test", [
        {"name": "null0", "containerEdits": {"env": ["CDI_DEV=override"]}}])
    cid = cdi.run("c", command=["sh", "-c", "echo $CDI_DEV; ls /dev/cdi-null 2>&1 | wc -l"],
                  CDI_devices=devices("example.com/test=null0"))
    out = cdi.output(cid)
    assert out[0] == "override"
    # the overriding spec has no device node: /dev/cdi-null is absent
    assert "No such file" in cdi.output(cdi.run(
        "d", command=["sh", "-c", "ls /dev/cdi-null 2>&1"],
        CDI_devices=devices("example.com/test=null0")))[0]


@pytest.mark.parametrize("name,code,want", [
    ("example.com/test=nosuch", grpc.StatusCode.NOT_FOUND,
     "CDI_devices[0] `example.com/test=nosuch`: no CDI spec defines it"),
    ("other.com/test=null0", grpc.StatusCode.NOT_FOUND, "`other.com/test=null0`"),
    ("null0", grpc.StatusCode.INVALID_ARGUMENT,
     "CDI_devices[0].name `null0`: want vendor.com/class=device"),
    ("example.com/test=", grpc.StatusCode.INVALID_ARGUMENT, "CDI_devices[0].name"),
])
def test_refused_names(cdi, name, code, want):
    d = expect_error(code, cdi.create, "bad", command=["true"], CDI_devices=devices(name))
    assert want in d, d
    assert cdi.list() == []


def test_refused_hooks(cdi):
    write_spec(cdi.etc, "20-hooks.json", "example.com/hooks", [
        {"name": "h", "containerEdits": {"hooks": [{"hookName": "createContainer",
                                                    "path": "/bin/true"}]}}])
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, cdi.create, "bad", command=["true"],
                     CDI_devices=devices("example.com/test=null0", "example.com/hooks=h"))
    assert "CDI_devices[1] `example.com/hooks=h`" in d and "hooks is not supported" in d, d
    assert cdi.list() == []
