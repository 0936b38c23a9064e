"""Crash safety of RunPodSandbox (issue 11): pods started in parallel, the
daemon SIGKILLed while they are half made, restarted (at once, while the
plugins and runc calls it started still run, or after they finished),
every listed pod stopped and removed through the CRI: nothing may be left,
IP leases above all."""
import os
import time

import grpc
import pytest

from conftest import api_pb2
import bundle
from crashenv import crash_envs, wait_for
import test_sandbox

pytestmark = test_sandbox.pytestmark


@pytest.fixture
def crash_env():
    with crash_envs("cs-") as make:
        yield make


def drain(futs):
    """Waits for every call, whatever it answered (the daemon was killed)."""
    for f in futs:
        try:
            f.result()
        except Exception:
            pass


def run_parallel(env, n, tag):
    futs = []
    for i in range(n):
        cfg = env.config(name="%s-%d" % (tag, i))
        futs.append(env.cri.future("RunPodSandbox", timeout=60, config=cfg))
    return futs


@pytest.mark.parametrize("kill_after,pause", [(0.3, 0.0), (0.3, 3.0), (0.6, 0.0), (0.6, 3.0)])
def test_sigkill_during_parallel_run_pod_sandbox_leaks_nothing(crash_env, kill_after, pause):
    env = crash_env()
    futs = run_parallel(env, 6, "crash")
    time.sleep(kill_after)
    env.kill()
    drain(futs)
    time.sleep(pause)
    env.start_again()
    env.remove_everything()
    assert wait_for(lambda: not wrapper_pids(env), timeout=30)
    leaks = env.full_leaks()
    assert not leaks, "%r\n%s" % (leaks, env.daemon.logs()[-6000:])
    # the daemon still works: a pod runs, gets an IP, goes away cleanly
    pid = env.run(env.config(name="after"))
    assert env.status(pid).status.network.ip.startswith(env.net.subnet_prefix + ".")
    env.stop(pid)
    env.remove(pid)
    assert not env.full_leaks()


def wrapper_pids(env):
    """Processes running a plugin wrapper of env."""
    pids = []
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if env.wrapper_dir.encode() in f.read():
                    pids.append(int(p))
        except (OSError, ValueError):
            pass
    return pids


def test_plugin_still_running_after_the_kill_is_waited_for(crash_env):
    """A plugin the dead daemon started (a slow ADD) still runs when the
    new daemon starts: recovery waits for it before its DEL, or the ADD
    would write its lease after the DEL and leak it (it did, with the wait
    turned off)."""
    env = crash_env()
    # the IPAM step is the slow one: bridge holds the netns by then, and
    # host-local writes the lease when the sleep ends
    env.wrap_plugin("host-local", 'if [ "$CNI_COMMAND" = ADD ]; then sleep 2; fi')
    futs = run_parallel(env, 2, "slow")
    assert wait_for(lambda: len(wrapper_pids(env)) == 2, timeout=30)
    env.kill()
    drain(futs)
    assert wrapper_pids(env)
    env.start_again()
    env.remove_everything()
    assert wait_for(lambda: not wrapper_pids(env), timeout=30)
    leaks = env.full_leaks()
    assert not leaks, "%r\n%s" % (leaks, env.daemon.logs()[-6000:])
    assert "left running by the previous daemon" in env.daemon.logs()


def test_monitor_still_creating_after_the_kill_is_waited_for(crash_env):
    """The monitor of a pod the dead daemon was starting is still in
    `runc create` (a slow runtime) when the new daemon starts: recovery
    waits for the create to end before it tears the pod down, or the
    container would appear after the teardown and stay."""
    env = crash_env(start=False)
    slow = os.path.join(env.base, "slow-runc")
    with open(slow, "w") as f:
        f.write('#!/bin/sh\nfor a; do [ "$a" = create ] && sleep 2; done\nexec %s "$@"\n'
                % bundle.RUNC)
    os.chmod(slow, 0o755)
    with open(env.daemon.config) as f:
        text = f.read()
    with open(env.daemon.config, "w") as f:
        f.write(text.replace("path: %s\n" % bundle.RUNC, "path: %s\n" % slow))
    env.start()

    def creating():
        return [p for p in cmdlines() if slow.encode() in p and b"create" in p]

    futs = run_parallel(env, 2, "slowrt")
    assert wait_for(lambda: len(creating()) == 2, timeout=30)
    env.kill()
    drain(futs)
    env.start_again()
    env.remove_everything()
    assert wait_for(lambda: not creating(), timeout=30)
    time.sleep(0.5)
    leaks = env.full_leaks()
    assert not leaks, "%r\n%s" % (leaks, env.daemon.logs()[-6000:])
    assert "a monitor creating its container" in env.daemon.logs()


def cmdlines():
    out = []
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                out.append(f.read())
        except OSError:
            pass
    return out


def test_failed_rollback_keeps_the_pod_until_its_del_works(crash_env):
    """RunPodSandbox fails after the IP was leased (portmap ADD fails) and
    the DELs of the rollback fail too (host-local DEL, twice): the pod is
    kept, NOTREADY, so RemovePodSandbox retries the DEL and frees the lease.
    Before, the record went with the failed rollback and the lease leaked."""
    env = crash_env(ports=True)
    count = os.path.join(env.base, "del-failures")
    env.wrap_plugin("portmap", 'if [ "$CNI_COMMAND" = ADD ]; then\n'
                    '  echo \'{"cniVersion":"1.0.0","code":11,"msg":"injected portmap failure"}\'\n'
                    '  exit 1\nfi')
    env.wrap_plugin("host-local", 'if [ "$CNI_COMMAND" = DEL ]; then\n'
                    '  n=$(cat %s 2>/dev/null || echo 0)\n'
                    '  if [ "$n" -lt 2 ]; then echo $((n + 1)) > %s\n'
                    '    echo \'{"cniVersion":"1.0.0","code":11,"msg":"injected DEL failure"}\'\n'
                    '    exit 1\n  fi\nfi' % (count, count))
    cfg = env.config(name="rb", port_mappings=[api_pb2.PortMapping(
        protocol=api_pb2.TCP, container_port=80, host_port=test_sandbox.free_port())])
    with pytest.raises(grpc.RpcError) as e:
        env.run(cfg)
    assert "injected portmap failure" in e.value.details(), env.daemon.logs()[-3000:]
    pods = env.list()
    assert len(pods) == 1 and pods[0].state == api_pb2.SANDBOX_NOTREADY, pods
    assert env.net.leases(), "the lease the failed DEL kept"
    env.remove(pods[0].id)
    leaks = env.full_leaks()
    assert not leaks, "%r\n%s" % (leaks, env.daemon.logs()[-6000:])
