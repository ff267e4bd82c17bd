#!/usr/bin/env python3
"""Sum a `perf trace -s` summary over the threads of the process.

    syscall_totals.py SYSCALLS_TXT OUT_TXT

`perf trace -s` prints one table per thread (syscall, calls, errors, total ms, min, avg, max,
stddev). OUT_TXT gets one line per syscall with its calls, total and average milliseconds and
the number of threads that made it, the largest total first. The totals are wall-clock time
spent inside each call, summed over threads, so waits (futex, epoll_wait, fdatasync) count
fully though they take no CPU.
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ROW = re.compile(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+%?\s*$")
THREAD = re.compile(r"^\s+\S.*\((\d+)\), \d+ events")


def main() -> int:
    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    calls, total_ms, threads = defaultdict(int), defaultdict(float), defaultdict(set)
    tid = None
    for line in src.read_text(errors="replace").splitlines():
        t = THREAD.match(line)
        if t:
            tid = t.group(1)
            continue
        m = ROW.match(line)
        if m:
            name = m.group(1)
            calls[name] += int(m.group(2))
            total_ms[name] += float(m.group(4))
            threads[name].add(tid)
    lines = [f"# {src.name}: syscalls summed over {len({t for s in threads.values() for t in s})} threads",
             f"{'syscall':<16} {'calls':>9} {'total ms':>11} {'avg ms':>9} {'threads':>7}"]
    for name in sorted(total_ms, key=total_ms.get, reverse=True):
        lines.append(f"{name:<16} {calls[name]:>9} {total_ms[name]:>11.1f} "
                     f"{total_ms[name] / max(calls[name], 1):>9.3f} {len(threads[name]):>7}")
    dest.write_text("\n".join(lines) + "\n")
    return 0 if total_ms else 1


if __name__ == "__main__":
    sys.exit(main())
