#!/usr/bin/env python3
"""Adds up the tests `make check` ran, from meson's JSON test logs, and prints a summary per
build and suite, then the last line `N passed, N failed`.

A TAP test contributes one count per "ok"/"not ok" line it printed; a test that failed
without reporting a failing TAP line (a crash, a sanitizer report at exit, a plan mismatch)
adds one failure; a test that printed no TAP lines counts once, by its result.
Extra results (e.g. the format check) are passed as NAME=ok|fail arguments.
"""
import json
import re
import sys

TAP_LINE = re.compile(r"^(not ok|ok)\b", re.M)


def count_log(path):
    passed = failed = 0
    failures = []
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        return 0, 1, [f"{path}: {e.strerror}"]
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        result = t.get("result", "")
        ok_result = result in ("OK", "EXPECTEDFAIL", "SKIP")
        marks = TAP_LINE.findall(t.get("stdout") or "")
        if marks:
            p = sum(1 for m in marks if m == "ok")
            f = len(marks) - p
            if f == 0 and not ok_result:
                f = 1
            passed += p
            failed += f
        elif ok_result:
            passed += 1
        else:
            failed += 1
        if not ok_result:
            failures.append(f"{t.get('name')} ({result})")
    return passed, failed, failures


def main(argv):
    total_p = total_f = 0
    for arg in argv[1:]:
        if "=" in arg and not arg.endswith(".json"):
            name, res = arg.split("=", 1)
            ok = res == "ok"
            total_p += ok
            total_f += not ok
            print(f"  {name:<28} {'ok' if ok else 'FAILED'}")
            continue
        p, f, fails = count_log(arg)
        total_p += p
        total_f += f
        print(f"  {arg:<60} {p} passed, {f} failed")
        for name in fails:
            print(f"      failed: {name}")
    print(f"{total_p} passed, {total_f} failed")
    return 0 if total_f == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
