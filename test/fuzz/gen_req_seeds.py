#!/usr/bin/python3
"""Writes the seed corpora of the fuzz_req_<type> entries into corpus/req_<type>/.

Each seed is one serialized CRI request: the shapes kubelet and critest send,
plus a few that must be refused (bad names, paths, sizes just over a cap).
Needs the Python classes protoc generates from api/cri/v1/api.proto (the build
puts them in build/gen/py):

    CRI_PY_GEN=build/gen/py /usr/bin/python3 test/fuzz/gen_req_seeds.py
"""
import os
import shutil
import sys

sys.path.insert(0, os.environ.get("CRI_PY_GEN", "build/gen/py"))
import api_pb2 as pb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UUID = "0f9c1d52-8a3b-4c55-9e0d-3b1f6a2c7e44"


def meta(name="web", ns="default", uid=UUID):
    return pb.PodSandboxMetadata(name=name, namespace=ns, uid=uid, attempt=1)


def pod(**kw):
    kw.setdefault("metadata", meta())
    return pb.PodSandboxConfig(**kw)


def kubelet_pod():
    return pod(
        hostname="web", log_directory="/var/log/pods/default_web_" + UUID,
        dns_config=pb.DNSConfig(servers=["10.96.0.10"],
                                searches=["default.svc.cluster.local", "svc.cluster.local"],
                                options=["ndots:5"]),
        port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=8080)],
        labels={"app": "web", "io.kubernetes.pod.name": "web",
                "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": UUID},
        annotations={"kubernetes.io/config.seen": "2026-01-01T00:00:00Z",
                     "kubernetes.io/config.source": "api"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods/besteffort/pod" + UUID,
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER),
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))))


def container(**kw):
    kw.setdefault("metadata", pb.ContainerMetadata(name="web", attempt=0))
    kw.setdefault("image", pb.ImageSpec(image="docker.io/library/busybox:latest"))
    return pb.ContainerConfig(**kw)


def create(cfg, **kw):
    return pb.CreateContainerRequest(pod_sandbox_id="a" * 64, config=cfg,
                                     sandbox_config=kubelet_pod(), **kw)


SEEDS = {
    "run_pod_sandbox": {
        "kubelet": pb.RunPodSandboxRequest(config=kubelet_pod()),
        "critest": pb.RunPodSandboxRequest(config=pod(
            metadata=meta("PodSandbox-with-attributes-" + UUID, "cri-test-namespace" + UUID,
                          "cri-test-uid" + UUID),
            labels={"foo": "bar"}, annotations={"abc": "def"})),
        "minimal": pb.RunPodSandboxRequest(config=pod()),
        "bad_uid": pb.RunPodSandboxRequest(config=pod(metadata=meta(uid="u;K8S_POD_NAME=x"))),
        "bad_namespace": pb.RunPodSandboxRequest(config=pod(metadata=meta(ns="Default"))),
        "bad_log_directory": pb.RunPodSandboxRequest(config=pod(log_directory="/var/log/../x")),
        "bad_label_key": pb.RunPodSandboxRequest(config=pod(labels={"bad key": "v"})),
        "big_annotations": pb.RunPodSandboxRequest(config=pod(
            annotations={"k%d" % i: "v" * 64 for i in range(4000)})),
        "no_config": pb.RunPodSandboxRequest(runtime_handler="runc"),
    },
    "create_container": {
        "kubelet": create(container(
            command=["/bin/sh", "-c"], args=["sleep 1000"], working_dir="/",
            envs=[pb.KeyValue(key="PATH", value=b"/bin")],
            mounts=[pb.Mount(container_path="/data", host_path="/var/lib/kubelet/pods/x",
                             propagation=pb.PROPAGATION_PRIVATE)],
            devices=[pb.Device(container_path="/dev/fuse", host_path="/dev/fuse",
                               permissions="rwm")],
            labels={"io.kubernetes.container.name": "web"},
            annotations={"io.kubernetes.container.hash": "1234",
                         "io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
            log_path="web/0.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(cpu_shares=2, memory_limit_in_bytes=1 << 26),
                security_context=pb.LinuxContainerSecurityContext(
                    capabilities=pb.Capability(drop_capabilities=["ALL"]),
                    masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"],
                    supplemental_groups=[1000])))),
        "critest": create(container(
            metadata=pb.ContainerMetadata(
                name="container-with-RunAsGroup-without-RunAsUser-test-" + UUID),
            log_path="container-with-RunAsGroup-without-RunAsUser-test-" + UUID + ".log")),
        "bad_log_path": create(container(log_path="../../etc/cron.d/x")),
        "abs_log_path": create(container(log_path="/etc/passwd")),
        "bad_name": create(container(metadata=pb.ContainerMetadata(name="a_b"))),
        "many_envs": create(container(envs=[pb.KeyValue(key="K%d" % i, value=b"v")
                                            for i in range(2000)])),
        "privileged": create(container(linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(privileged=True)))),
    },
    "pull_image": {
        "short": pb.PullImageRequest(image=pb.ImageSpec(image="busybox")),
        "full": pb.PullImageRequest(image=pb.ImageSpec(
            image="127.0.0.1:5000/library/busybox:1.36@sha256:" + "a" * 64),
            auth=pb.AuthConfig(username="u", password="p")),
        "bad": pb.PullImageRequest(image=pb.ImageSpec(image="Busybox:bad:tag")),
        "empty": pb.PullImageRequest(),
    },
    "exec_sync": {
        "ok": pb.ExecSyncRequest(container_id="abc", cmd=["sh", "-c", "true"], timeout=5),
        "empty": pb.ExecSyncRequest(container_id="abc"),
        "negative_timeout": pb.ExecSyncRequest(container_id="abc", cmd=["true"], timeout=-1),
    },
    "exec": {
        "ok": pb.ExecRequest(container_id="abc", cmd=["sh"], stdin=True, stdout=True, tty=True),
        "tty_stderr": pb.ExecRequest(container_id="abc", cmd=["sh"], stderr=True, tty=True),
        "no_stream": pb.ExecRequest(container_id="abc", cmd=["sh"]),
    },
    "attach": {
        "ok": pb.AttachRequest(container_id="abc", stdout=True, stderr=True),
        "no_id": pb.AttachRequest(stdout=True),
    },
    "port_forward": {
        "ok": pb.PortForwardRequest(pod_sandbox_id="abc", port=[80, 443]),
        "none": pb.PortForwardRequest(pod_sandbox_id="abc"),
        "bad_port": pb.PortForwardRequest(pod_sandbox_id="abc", port=[0, 70000]),
    },
    "update_container_resources": {
        "ok": pb.UpdateContainerResourcesRequest(
            container_id="abc", linux=pb.LinuxContainerResources(
                cpu_quota=50000, cpu_period=100000, unified={"memory.high": "max"},
                hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=0)])),
        "no_linux": pb.UpdateContainerResourcesRequest(container_id="abc"),
    },
}


def main():
    for name, seeds in SEEDS.items():
        out = os.path.join(HERE, "corpus", "req_" + name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for seed, msg in seeds.items():
            with open(os.path.join(out, seed), "wb") as f:
                f.write(msg.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
