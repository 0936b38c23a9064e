"""AppArmor fields (issue 13) on a host without AppArmor: `apparmor`
RuntimeDefault and Unconfined (and the deprecated `apparmor_profile` "",
"runtime/default", "unconfined") are accepted and apply nothing; a Localhost
profile cannot be applied and is refused with INVALID_ARGUMENT naming the
field and the profile; malformed values too. Nothing is left behind."""
import json
import os

import grpc
import pytest

import api_pb2
from test_container import expect_error, pod, reg  # noqa: F401 (fixtures)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)

P = api_pb2.SecurityProfile

if os.path.exists("/sys/module/apparmor/parameters/enabled"):
    with open("/sys/module/apparmor/parameters/enabled") as _f:
        if _f.read().startswith("Y"):
            pytestmark = pytest.mark.skip(reason="AppArmor is enabled on this host: these "
                                                 "tests are for hosts without it")


def ctx(**kw):
    return api_pb2.LinuxContainerConfig(security_context=api_pb2.LinuxContainerSecurityContext(**kw))


@pytest.mark.parametrize("kw", [
    {"apparmor": P(profile_type=P.RuntimeDefault)},
    {"apparmor": P(profile_type=P.Unconfined)},
    {"apparmor_profile": "runtime/default"},
    {"apparmor_profile": "unconfined"},
    # apparmor wins over the deprecated string
    {"apparmor": P(profile_type=P.Unconfined), "apparmor_profile": "localhost/x"},
])
def test_accepted(pod, kw):
    cid = pod.run("ok", command=["cat", "/proc/self/attr/current"], linux=ctx(**kw))
    st = pod.wait_exit(cid)
    assert st.exit_code in (0, 1)  # no LSM: the file may be unreadable, never set
    spec = json.loads(pod.status(cid, verbose=True).info["info"])["runtimeSpec"]
    assert "apparmorProfile" not in spec["process"]


@pytest.mark.parametrize("kw,want", [
    ({"apparmor": P(profile_type=P.Localhost, localhost_ref="my-profile")},
     "security_context.apparmor: AppArmor is not enabled on this host: profile `my-profile`"),
    ({"apparmor_profile": "localhost/my-profile"},
     "security_context.apparmor_profile: AppArmor is not enabled on this host: profile "
     "`my-profile`"),
    ({"apparmor": P(profile_type=P.Localhost)}, "apparmor.localhost_ref is empty"),
    ({"apparmor": P(profile_type=9)}, "apparmor.profile_type: invalid value 9"),
    ({"apparmor_profile": "docker-default"}, "apparmor_profile `docker-default`"),
])
def test_refused(pod, kw, want):
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "bad", command=["true"],
                     linux=ctx(**kw))
    assert want in d, d
    assert pod.list() == []
