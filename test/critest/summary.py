#!/usr/bin/python3
"""Summarizes a ginkgo JSON report (critest --ginkgo.json-report): the
passed/failed/skipped counts, then every spec that did not pass with the
reason ginkgo recorded (a Skip() message, or "filtered out" for specs left
out by --ginkgo.skip/--ginkgo.focus), one a line.

Usage: summary.py REPORT.json
"""
import json
import sys


def spec_name(spec):
    return " ".join([t for t in spec.get("ContainerHierarchyTexts") or []] +
                    [spec.get("LeafNodeText", "")]).strip()


def main():
    with open(sys.argv[1]) as fh:
        reports = json.load(fh)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    lines = []
    for report in reports:
        for spec in report.get("SpecReports") or []:
            if spec.get("LeafNodeType") != "It":
                if spec.get("State") in ("failed", "panicked", "timedout", "interrupted",
                                         "aborted"):
                    counts["failed"] += 1
                    lines.append("FAILED  %s %s: %s" % (spec.get("LeafNodeType"),
                                                       spec_name(spec), failure(spec)))
                continue
            state = spec.get("State")
            if state == "passed":
                counts["passed"] += 1
            elif state == "skipped":
                counts["skipped"] += 1
                reason = failure(spec) or "filtered out (--ginkgo.skip or not focused)"
                lines.append("SKIPPED %s: %s" % (spec_name(spec), reason))
            elif state == "pending":
                counts["skipped"] += 1
                lines.append("PENDING %s" % spec_name(spec))
            else:
                counts["failed"] += 1
                lines.append("FAILED  %s: %s" % (spec_name(spec), failure(spec)))
    print("critest summary: %(passed)d passed, %(failed)d failed, %(skipped)d skipped" % counts)
    for line in sorted(lines):
        print("  " + line)


def failure(spec):
    msg = (spec.get("Failure") or {}).get("Message", "")
    return " ".join(msg.split())[:300]


if __name__ == "__main__":
    main()
