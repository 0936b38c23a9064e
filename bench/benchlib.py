"""What the Python benches share: their command line (BUILD_DIR, -x N
options), pointing the test/e2e helpers at a build, percentile rows, and
the leak report at the end."""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def build_dir(default):
    """The first argument that is a directory, else default."""
    return next((a for a in sys.argv[1:] if not a.startswith("-") and os.path.isdir(a)),
                default)


def opt(flag, default):
    """The integer after flag on the command line, else default."""
    return int(sys.argv[sys.argv.index(flag) + 1]) if flag in sys.argv else default


def use_build(build):
    """The test/e2e helpers (importable from now on) run build's binaries,
    unless the environment names others."""
    for var, name in (("CRICKETD", "cricketd"), ("CRICKET_CONMON", "cricket-conmon"),
                      ("CRICKET_PAUSE", "cricket-pause"), ("CRI_PY_GEN", "gen/py")):
        os.environ.setdefault(var, os.path.join(build, name))
    sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def row(name, values, width=40):
    print("%-*s median %7.1f ms   p95 %7.1f ms" % (width, name, statistics.median(values),
                                                   pct(values, 95)))


def report_leaks(env):
    """The exit status: 1 (after printing them) when env left anything."""
    leaks = env.leaks()
    if leaks:
        print("LEAKS: %r" % leaks)
        return 1
    return 0
