#!/usr/bin/env python3
"""Generates cricketd(8) and cricket.yaml(5) from what cannot drift: the
options come from `cricketd --help` of the binary just built, the keys,
defaults and their documentation from conf/cricket.yaml.

  genman.py CRICKETD CRICKET_YAML VERSION OUTDIR
"""
import re
import subprocess
import sys

KEY = re.compile(r"^(\s*)([a-z_][a-z0-9_.-]*):(?:\s+(.*))?$")
COMMENTED_KEY = re.compile(r"^(\s*)# ([a-z_][a-z0-9_]*):\s+(.*)$")


def roff(text):
    """Escapes text for a roff line (backslashes, leading dots and quotes)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def parse_yaml_doc(path):
    """Returns (preamble paragraphs, [(key path, default, description lines)])."""
    preamble, keys, doc, stack = [], [], [], []
    in_preamble = True
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        if in_preamble:
            if line.startswith("#"):
                preamble.append(line[1:].strip())
                continue
            in_preamble = False
        if not line.strip():
            doc = []
            continue
        m = COMMENTED_KEY.match(line)
        if m:  # a key documented but left at its computed default
            indent = len(m.group(1))
            parents = [k for i, k in stack if i < indent]
            keys.append((".".join(parents + [m.group(2)]), m.group(3) + " (computed)", doc))
            doc = []
            continue
        if line.lstrip().startswith("#"):
            doc.append(line.lstrip()[1:].strip())
            continue
        m = KEY.match(line)
        if not m:
            if line.lstrip().startswith("- ") and keys:  # a list default
                path, default, d = keys[-1]
                item = line.strip()[2:]
                keys[-1] = (path, item if default in ("", None) else default + ", " + item, d)
            continue
        indent = len(m.group(1))
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, m.group(2))]
        path = ".".join(k for _, k in stack)
        value = m.group(3) or ""
        if doc or value:
            keys.append((path, value, doc))
        doc = []
    return preamble, keys


def paragraphs(lines):
    out, cur = [], []
    for l in lines:
        if not l:
            if cur:
                out.append(" ".join(cur))
            cur = []
        else:
            cur.append(l)
    if cur:
        out.append(" ".join(cur))
    return out


def header(name, section, version, title):
    return ['.TH %s %s "" "cricket %s" "%s"' % (name.upper(), section, version, title)]


def yaml_page(preamble, keys, version):
    out = header("cricket.yaml", 5, version, "File Formats")
    out += [".SH NAME", "cricket.yaml \\- configuration of cricketd, the cricket CRI runtime",
            ".SH SYNOPSIS", "\\fI/etc/cricket/cricket.yaml\\fR",
            ".br", "\\fI/etc/cricket/cricket.d/*.yaml\\fR", ".SH DESCRIPTION"]
    body = [l for l in preamble if not l.startswith("cricketd configuration")]
    for p in paragraphs(body):
        out += [".PP", roff(p)]
    out += [".SH KEYS", ".PP",
            "Each key is given by its dotted path, with its built\\-in default."]
    section = None
    for path, default, doc in keys:
        top = path.split(".")[0]
        if "." in path and top != section:
            section = top
            out += [".SS %s" % top]
        if not doc and not default:
            continue
        out += [".TP", "\\fB%s\\fR (default: %s)" % (roff(path), roff(default or '""'))]
        first = True
        for p in paragraphs(doc):
            if not first:
                out.append(".IP")
            out.append(roff(p))
            first = False
    out += [".SH SEE ALSO", "\\fBcricketd\\fR(8), \\fBcrictl\\fR(1), \\fBkubelet\\fR(1)"]
    return "\n".join(out) + "\n"


def help_options(cricketd):
    text = subprocess.run([cricketd, "--help"], capture_output=True, text=True, check=True,
                          timeout=10).stdout
    usage = text.splitlines()[0].replace("Usage: ", "")
    opts, cmds, cur = [], [], None
    target = opts
    for line in text.splitlines()[1:]:
        if line.startswith("Commands:"):
            target = cmds
            continue
        if line.startswith(" " * 20) and cur:  # continuation of the text column
            cur[1] += " " + line.strip()
            continue
        m = re.match(r"^ {2,8}(\S.*?)\s{2,}(\S.*)$", line)
        if m:
            cur = [m.group(1).strip(), m.group(2).strip()]
            target.append(cur)
    return usage, opts, cmds


def daemon_page(cricketd, version):
    usage, opts, cmds = help_options(cricketd)
    out = header("cricketd", 8, version, "System Administration")
    out += [".SH NAME", "cricketd \\- Kubernetes CRI runtime daemon",
            ".SH SYNOPSIS", "\\fB%s\\fR" % roff(usage), ".SH DESCRIPTION",
            "cricketd serves the Kubernetes Container Runtime Interface (runtime.v1 "
            "RuntimeService and ImageService) over gRPC on a unix socket, for kubelet, "
            "crictl and kubeadm. Pods are a pause sandbox plus containers that join its "
            "namespaces; networking is done by CNI plugins; each container has a small "
            "monitor, cricket\\-conmon, that outlives the daemon and writes the kubelet's "
            "log format; runc runs the containers.",
            ".SH OPTIONS"]
    for flag, text in opts:
        out += [".TP", "\\fB%s\\fR" % roff(flag), roff(text)]
    if cmds:
        out += [".SH COMMANDS"]
        for cmd, text in cmds:
            out += [".TP", "\\fB%s\\fR" % roff(cmd), roff(text)]
    out += [".SH SIGNALS",
            ".TP", "\\fBSIGTERM\\fR, \\fBSIGINT\\fR",
            "Graceful stop: new calls are refused, calls in flight get 5 seconds, the "
            "socket is removed. Containers keep running under their monitors.",
            ".TP", "\\fBSIGHUP\\fR",
            "Reloads the config files (and flags) as at startup: log_level, image.registries, "
            "image.insecure_registries, image.auth_file and network.default_network take effect "
            "for what starts afterwards; any other changed key is logged as needing a restart. "
            "A config that does not load or validate is logged and the running one stays.",
            ".TP", "\\fBSIGUSR1\\fR", "Logs the daemon's state and its effective config.",
            ".SH EXIT STATUS",
            ".TP", "\\fB0\\fR", "Stopped by a signal.",
            ".TP", "\\fB1\\fR", "Could not start (another daemon holds the socket or root).",
            ".TP", "\\fB2\\fR", "Bad command line or config (file:line: message).",
            ".SH FILES",
            ".TP", "\\fI/etc/cricket/cricket.yaml\\fR, \\fI/etc/cricket/cricket.d/*.yaml\\fR",
            "Configuration, see \\fBcricket.yaml\\fR(5).",
            ".TP", "\\fI/run/cricket/cricket.sock\\fR", "The CRI socket (mode 0660).",
            ".TP", "\\fI/var/lib/cricket\\fR", "Persistent state: metadata, images, layers, "
            "container files (root only).",
            ".TP", "\\fI/run/cricket\\fR", "Volatile state: bundles, network namespaces, "
            "exit files.",
            ".SH SEE ALSO", "\\fBcricket.yaml\\fR(5), \\fBcrictl\\fR(1), \\fBkubelet\\fR(1), "
            "\\fBrunc\\fR(8)"]
    return "\n".join(out) + "\n"


def main():
    cricketd, conf_yaml, version, outdir = sys.argv[1:5]
    preamble, keys = parse_yaml_doc(conf_yaml)
    with open(outdir + "/cricket.yaml.5", "w") as f:
        f.write(yaml_page(preamble, keys, version))
    with open(outdir + "/cricketd.8", "w") as f:
        f.write(daemon_page(cricketd, version))


if __name__ == "__main__":
    main()
