"""Random kills (issue 11): rounds of parallel pod churn (RunPodSandbox,
CreateContainer, StartContainer, StopContainer, RemoveContainer,
StopPodSandbox, RemovePodSandbox, each worker in a loop), the daemon
SIGKILLed at a random moment, restarted after a random pause, everything
listed removed through the CRI, then the leak check of crashenv. The seed
is printed (CRICKET_RANDOM_KILL_SEED replays a run)."""
import os
import random
import threading
import time

import grpc
import pytest

from conftest import api_pb2
from crashenv import crash_envs
from registry import busybox_registry, registry_config
import test_sandbox

pytestmark = test_sandbox.pytestmark
ROUNDS = int(os.environ.get("CRICKET_RANDOM_KILL_ROUNDS", "20"))
WORKERS = 4


@pytest.fixture
def churn_env():
    with busybox_registry("cricket-rkreg-") as reg, \
            crash_envs("rk-", ports=True, extra_config=registry_config(reg.host)) as make:
        yield make


def churn(env, cri, tag, stop, errors):
    """Whole pod lives in a loop until stop is set or the daemon goes."""
    n = 0
    try:
        while not stop.is_set():
            # every other pod shares its PID namespace (a pause process);
            # the rest are kubelet's default pid CONTAINER (no infra, pins)
            ns = api_pb2.NamespaceOption(pid=api_pb2.POD if n % 2 else api_pb2.CONTAINER)
            cfg = env.config(name="%s-%d" % (tag, n), port_mappings=[api_pb2.PortMapping(
                protocol=api_pb2.TCP, container_port=80, host_port=env.ports[tag])],
                linux=api_pb2.LinuxPodSandboxConfig(security_context=api_pb2.
                                                    LinuxSandboxSecurityContext(
                                                        namespace_options=ns)))
            n += 1
            pid = cri.call("RunPodSandbox", timeout=60, config=cfg).pod_sandbox_id
            ccfg = api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="c"),
                                           image=api_pb2.ImageSpec(image="busybox"),
                                           command=["sleep", "1000"])
            cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pid, config=ccfg,
                           sandbox_config=cfg).container_id
            cri.call("StartContainer", timeout=60, container_id=cid)
            cri.call("StopContainer", timeout=60, container_id=cid)
            cri.call("RemoveContainer", timeout=60, container_id=cid)
            cri.call("StopPodSandbox", timeout=60, pod_sandbox_id=pid)
            cri.call("RemovePodSandbox", timeout=60, pod_sandbox_id=pid)
    except grpc.RpcError as e:
        if not stop.is_set():
            errors.append("%s: %s" % (tag, e))


def test_random_kills_during_pod_churn_leak_nothing(churn_env):
    seed = int(os.environ.get("CRICKET_RANDOM_KILL_SEED") or random.randrange(1 << 32))
    print("random kill seed: %d (CRICKET_RANDOM_KILL_SEED=%d replays it)" % (seed, seed))
    rnd = random.Random(seed)
    env = churn_env()
    env.ports = {"w%d" % i: test_sandbox.free_port() for i in range(WORKERS)}
    keep = {env.cri.call("PullImage", timeout=120,
                         image=api_pb2.ImageSpec(image="busybox")).image_ref}
    for rnd_no in range(ROUNDS):
        stop, errors = threading.Event(), []
        workers = [threading.Thread(target=churn, args=(env, env.cri, tag, stop, errors))
                   for tag in env.ports]
        for w in workers:
            w.start()
        kill_at = rnd.uniform(0.05, 1.5)
        time.sleep(kill_at)
        stop.set()
        env.kill()
        for w in workers:
            w.join(timeout=120)
        assert not errors, "round %d (seed %d): before the kill: %s" % (rnd_no, seed, errors)
        time.sleep(rnd.choice((0.0, 0.0, 0.2, 1.0)))
        env.start_again()
        env.remove_everything()
        leaks = env.full_leaks(images_allowed=keep)
        assert not leaks, "round %d (seed %d, killed at %.2f s): %r\n%s" % (
            rnd_no, seed, kill_at, leaks, env.daemon.logs()[-8000:])
    env.remove_images()
    assert not env.full_leaks()
