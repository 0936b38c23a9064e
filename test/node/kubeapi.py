"""A control plane for the node tests: etcd and kube-apiserver on free
127.0.0.1 ports, certificates made with openssl, and a kubelet (the
kubenode.Node, same cricketd setup) registered as a node with a client
certificate. No controller-manager and no scheduler: pods are created with
nodeName set, admission runs without the ServiceAccount plugin (it needs the
controller-manager's service accounts), and the kubelet deletes a terminated
pod itself. Everything lives under temporary directories and is stopped by
PID."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import kubenode

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
SERVICE_RANGE = "10.96.0.0/24"


def openssl(*args, cwd):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    """A CA and the certificates the control plane and the kubelet need."""

    def __init__(self, d):
        self.dir = d
        os.makedirs(d)
        self.ca = self.path("ca.crt")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=cricket-test-ca",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=d)
        # service-account tokens: signed with sa.key, checked with sa.pub
        openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, subject, server_sans=None):
        """(cert, key) for SUBJECT; a serving certificate when SERVER_SANS."""
        ext = ["keyUsage=critical,digitalSignature,keyEncipherment"]
        if server_sans:
            ext += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(server_sans)]
        else:
            ext += ["extendedKeyUsage=clientAuth"]
        with open(self.path(name + ".ext"), "w") as f:
            f.write("\n".join(ext) + "\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject,
                cwd=self.dir)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out",
                name + ".crt", cwd=self.dir)
        return self.path(name + ".crt"), self.path(name + ".key")

    def kubeconfig(self, name, server, cert, key):
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
               "clusters": [{"name": "test", "cluster": {"server": server,
                                                         "certificate-authority": self.ca}}],
               "users": [{"name": "u", "user": {"client-certificate": cert,
                                                "client-key": key}}],
               "contexts": [{"name": "test", "context": {"cluster": "test", "user": "u"}}]}
        path = self.path(name + ".kubeconfig")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path


def start_logged(argv, log_path):
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), log
    except BaseException:
        log.close()
        raise


def stop_proc(proc, log, timeout=30):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if log is not None:
        log.close()


def tail(path, n=6000):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-n:]
    except OSError:
        return ""


class ControlPlane:
    """etcd + kube-apiserver; kubectl() as cluster admin."""

    def __init__(self, kube_bin):
        self.kube_bin = kube_bin
        self.base = tempfile.mkdtemp(prefix="cricket-apiserver-")
        self.pki = None
        self.etcd = self.etcd_log = self.apiserver = self.apiserver_log = None

    def start(self):
        self.pki = Pki(os.path.join(self.base, "pki"))
        self._start_etcd()
        self._start_apiserver()
        return self

    def _start_etcd(self):
        self.etcd_port, peer = kubenode.registry.free_port(), kubenode.registry.free_port()
        client, peer_url = "http://127.0.0.1:%d" % self.etcd_port, "http://127.0.0.1:%d" % peer
        self.etcd_log_path = os.path.join(self.base, "etcd.log")
        self.etcd, self.etcd_log = start_logged(
            [ETCD, "--name", "test", "--data-dir", os.path.join(self.base, "etcd"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", "test=" + peer_url, "--initial-cluster-state", "new"],
            self.etcd_log_path)
        try:
            kubenode.registry.wait_port(self.etcd_port, self.etcd, timeout=30)
        except Exception as e:
            raise AssertionError("etcd did not start: %s\n%s" % (e, tail(self.etcd_log_path)))

    def _start_apiserver(self):
        p = self.pki
        cert, key = p.issue("apiserver", "/CN=kube-apiserver",
                            ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes",
                             "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                             "IP:10.96.0.1"])
        kcert, kkey = p.issue("apiserver-kubelet-client",
                              "/O=system:masters/CN=kube-apiserver-kubelet-client")
        acert, akey = p.issue("admin", "/O=system:masters/CN=cricket-test-admin")
        self.port = kubenode.registry.free_port()
        self.server = "https://127.0.0.1:%d" % self.port
        self.admin = p.kubeconfig("admin", self.server, acert, akey)
        self.apiserver_log_path = os.path.join(self.base, "kube-apiserver.log")
        argv = [os.path.join(self.kube_bin, "kube-apiserver"),
                "--etcd-servers", "http://127.0.0.1:%d" % self.etcd_port,
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.port),
                "--tls-cert-file", cert, "--tls-private-key-file", key,
                "--client-ca-file", p.ca,
                "--service-account-key-file", p.path("sa.pub"),
                "--service-account-signing-key-file", p.path("sa.key"),
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--service-cluster-ip-range", SERVICE_RANGE,
                "--authorization-mode", "Node,RBAC",
                # ServiceAccount admission wants the controller-manager's accounts
                "--disable-admission-plugins", "ServiceAccount",
                "--enable-admission-plugins", "NodeRestriction",
                # the `kubernetes` service's endpoints: a loopback address is invalid there
                "--endpoint-reconciler-type", "none",
                "--kubelet-client-certificate", kcert, "--kubelet-client-key", kkey,
                "--kubelet-certificate-authority", p.ca,
                "--kubelet-preferred-address-types", "InternalIP",
                "--profiling=false", "--v=1"]
        self.apiserver, self.apiserver_log = start_logged(argv, self.apiserver_log_path)
        deadline = time.monotonic() + 120
        r = None
        while time.monotonic() < deadline:
            if self.apiserver.poll() is not None:
                raise AssertionError("kube-apiserver exited with %d:\n%s" % (
                    self.apiserver.returncode, tail(self.apiserver_log_path)))
            r = self.kubectl("get", "--raw", "/readyz", check=False, timeout=10)
            if r.returncode == 0 and r.stdout.strip() == "ok":
                return
            time.sleep(1)
        raise AssertionError("kube-apiserver not ready in 120s: %s\n%s" % (
            r and r.stderr, tail(self.apiserver_log_path)))

    def kubectl(self, *args, check=True, timeout=60, env=None, input=None):
        r = subprocess.run([os.path.join(self.kube_bin, "kubectl"), "--kubeconfig", self.admin]
                           + list(args), capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, **(env or {})), input=input)
        if check and r.returncode != 0:
            raise AssertionError("kubectl %s: exit %d\n%s\n%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def kubectl_argv(self, *args):
        return [os.path.join(self.kube_bin, "kubectl"), "--kubeconfig", self.admin] + list(args)

    def get(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def diagnostics(self):
        return "--- kube-apiserver ---\n%s" % tail(self.apiserver_log_path, 3000)

    def stop(self):
        stop_proc(self.apiserver, self.apiserver_log)
        stop_proc(self.etcd, self.etcd_log)
        keep = os.environ.get("CRICKET_NODE_KEEP_LOGS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            for f in ("kube-apiserver.log", "etcd.log"):
                if os.path.exists(os.path.join(self.base, f)):
                    shutil.copy(os.path.join(self.base, f),
                                os.path.join(keep, os.path.basename(self.base) + "-" + f))
        shutil.rmtree(self.base, ignore_errors=True)


class ApiNode(kubenode.Node):
    """The kubelet of kubenode.Node, registered with the control plane: a
    client certificate (O=system:nodes, CN=system:node:<name>), the node IP
    of _node_address, and a serving certificate the API server checks."""

    def __init__(self, kube_bin, cp):
        super().__init__(kube_bin)
        self.cp = cp
        self.bridge_made = False

    def _start_kubelet(self):
        if not self.bridge_made:
            self._node_address()
        super()._start_kubelet()

    def _node_address(self):
        """kubelet refuses a loopback node IP (validateNodeIP), so the node's
        InternalIP, where kubelet serves and the API server reaches it, is the
        gateway address of the test's own bridge, made here before the first
        pod (the CNI bridge plugin takes the bridge and address as they are)."""
        gw = self.net.gateway
        kubenode.sh("ip", "link", "add", "name", self.net.name, "type", "bridge", check=True)
        self.bridge_made = True
        kubenode.sh("ip", "addr", "add", gw + "/24", "dev", self.net.name, check=True)
        kubenode.sh("ip", "link", "set", self.net.name, "up", check=True)
        self.kubelet_host = gw
        p = self.cp.pki
        cert, key = p.issue("kubelet-" + self.tag,
                            "/O=system:nodes/CN=system:node:" + self.node_name)
        kubeconfig = p.kubeconfig("kubelet-" + self.tag, self.cp.server, cert, key)
        scert, skey = p.issue("kubelet-serving-" + self.tag, "/CN=" + self.node_name,
                              ["IP:" + gw, "DNS:" + self.node_name])
        self.kubelet_config.update({
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": p.ca}},
            "tlsCertFile": scert, "tlsPrivateKeyFile": skey,
        })
        self.kubelet_args += ["--kubeconfig", kubeconfig, "--node-ip", gw]

    def pod_manifest(self, name, spec):
        spec.setdefault("terminationGracePeriodSeconds", 1)
        spec.setdefault("automountServiceAccountToken", False)
        spec.setdefault("enableServiceLinks", False)
        spec.setdefault("dnsPolicy", "Default")
        spec["nodeName"] = self.node_name
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            c.setdefault("image", "busybox:latest")
            c.setdefault("imagePullPolicy", "IfNotPresent")
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}

    def create_pod(self, name, spec):
        self.cp.kubectl("create", "-f", "-", input=json.dumps(self.pod_manifest(name, spec)))

    def api_pod(self, name):
        r = self.cp.kubectl("get", "pod", "-n", self.namespace, name, "-o", "json",
                            check=False)
        if r.returncode != 0:
            if "NotFound" in r.stderr:
                return None
            raise AssertionError(r.stderr)
        return json.loads(r.stdout)

    def wait_api_pod(self, name, pred, what, timeout=120):
        deadline = time.monotonic() + timeout
        p = None
        while time.monotonic() < deadline:
            p = self.api_pod(name)
            if p is not None and pred(p):
                return p
            time.sleep(0.5)
        raise AssertionError("pod %s: %s not reached in %ds; last status:\n%s\n%s\n%s" % (
            name, what, timeout, json.dumps(p and p.get("status"), indent=1),
            self.diagnostics(), self.cp.diagnostics()))

    def api_node(self):
        return self.cp.get("node", self.node_name)

    def error_lines(self):
        """kubelet's error-level lines (klog `E`), as logged."""
        with open(self.kubelet_log_path, errors="replace") as f:
            return [line.rstrip("\n") for line in f if line.startswith("E")]
