"""SupplementalGroupsPolicy (issue 13): Merge (the default) adds the groups
the image's /etc/group gives the user; Strict only the primary group and
supplemental_groups. ContainerStatus.user reports what was applied, and
Status advertises the feature. The image is critest's
test-image-predefined-group: default-user (1000) in group 50000."""
import grpc
import pytest

import api_pb2
from registry import push_image, tar_bytes
from test_container import Pod, expect_error, pod, reg  # noqa: F401 (fixtures)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "default-user:x:1000:1000::/home/default-user:/bin/sh\n")
GROUP = ("root:x:0:\ndefault-user:x:1000:\n"
         "group-defined-in-image:x:50000:default-user\n")


@pytest.fixture
def gpod(pod):
    groups = tar_bytes([("etc", "dir", None, {"mode": 0o755}),
                        ("etc/passwd", "file", PASSWD, {"mode": 0o644}),
                        ("etc/group", "file", GROUP, {"mode": 0o644})])
    push_image(pod.reg, "library/groups", "1", [pod.reg.busybox_layer, groups],
               config_extra={"User": "1000"})
    pod.pull("groups:1")
    return pod


def run_id(pod, name, **sc):
    ctx = api_pb2.LinuxContainerSecurityContext(run_as_user=api_pb2.Int64Value(value=1000),
                                                supplemental_groups=[1234], **sc)
    cid = pod.run(name, image="groups:1", command=["id", "-G"],
                  linux=api_pb2.LinuxContainerConfig(security_context=ctx))
    out = pod.output(cid)
    user = pod.status(cid).status.user.linux
    return out, (user.uid, user.gid, sorted(user.supplemental_groups))


def test_feature_in_status(pod):
    assert pod.cri.call("Status").features.supplemental_groups_policy


def test_merge_adds_image_groups(gpod):
    out, user = run_id(gpod, "merge")
    assert out == ["1000 1234 50000"]
    assert user == (1000, 1000, [1000, 1234, 50000])


def test_strict_leaves_image_groups_out(gpod):
    out, user = run_id(gpod, "strict", supplemental_groups_policy=api_pb2.Strict)
    assert out == ["1000 1234"]
    assert user == (1000, 1000, [1000, 1234])


def test_unknown_policy_is_refused(gpod):
    ctx = api_pb2.LinuxContainerSecurityContext(supplemental_groups_policy=7)
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, gpod.create, "bad", image="groups:1",
                     command=["true"], linux=api_pb2.LinuxContainerConfig(security_context=ctx))
    assert "supplemental_groups_policy" in d and "7" in d
    assert gpod.list() == []
