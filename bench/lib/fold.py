#!/usr/bin/env python3
"""Fold `perf script` output into flamegraph stacks and a top-symbols summary.

    fold.py PERF_SCRIPT_TXT FOLDED_OUT TOP_OUT [TITLE]

PERF_SCRIPT_TXT is `perf script` of a `perf record --call-graph dwarf` profile: one header
line per sample (`comm tid time: period event:`), then its frames leaf first, one per line
(`addr symbol+offset (object)`, inlined frames too), then a blank line. FOLDED_OUT gets one
line per distinct stack, root first (`thread;frame;...;leaf count`, generic arguments cut to
`<…>`), the input of
inferno-flamegraph or flamegraph.pl; kernel frames end in `_[k]`. TOP_OUT gets the share of
samples per thread, (name/tid) and per object (kernel, strand, libc ...), per leaf symbol (self time) and
per symbol anywhere on the stack (inclusive time).
"""
import re
import sys
from collections import Counter
from pathlib import Path

HEADER = re.compile(r"^(\S.*?)\s+(\d+)(?:/\d+)?\s+[\d.]+:\s+")
FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")
OFFSET = re.compile(r"\+0x[0-9a-f]+$")


def strip_generics(name: str) -> str:
    """`map<bytes::Bytes, Vec<u8>>::f` -> `map<…>::f`: the arguments make names unreadable."""
    out, depth, prev = [], 0, ""
    for ch in name:
        if ch == ">" and prev == "-":  # `fn() -> T`, not a closing bracket
            prev = ch
            continue
        prev = ch
        if ch == "<":
            if depth == 0:
                out.append("<…")
            depth += 1
        elif ch == ">" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(">")
        elif depth == 0:
            out.append(ch)
    if depth > 0:  # perf cuts very long names
        out.append(">")
    return "".join(out)


def frame_name(sym: str, obj: str) -> tuple[str, str]:
    obj_name = "kernel" if obj.startswith("[kernel") else Path(obj).name if obj != "inlined" else ""
    sym = OFFSET.sub("", sym)
    if sym in ("", "[unknown]"):
        sym = f"[unknown in {obj_name or obj}]"
    sym = strip_generics(sym).replace(";", ",")
    if obj_name == "kernel":
        sym += "_[k]"
    return sym, obj_name


def parse(text: str):
    """Yield (thread, [(frame, object) leaf first]) per sample."""
    thread, frames = None, []
    for line in text.splitlines():
        if not line.strip():
            if thread is not None:
                yield thread, frames
            thread, frames = None, []
            continue
        if not line[0].isspace():
            m = HEADER.match(line)
            thread, frames = (f"{m.group(1).strip()}/{m.group(2)}" if m else line.split()[0]), []
            continue
        m = FRAME.match(line)
        if m and thread is not None:
            frames.append(frame_name(m.group(2), m.group(3)))
    if thread is not None:
        yield thread, frames


def pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:5.1f}%"


def main() -> int:
    src, folded_out, top_out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    title = sys.argv[4] if len(sys.argv) > 4 else src.name
    stacks, threads, objects, self_, incl = Counter(), Counter(), Counter(), Counter(), Counter()
    total = 0
    for thread, frames in parse(src.read_text(errors="replace")):
        total += 1
        threads[thread] += 1
        names = [f for f, _ in frames]
        stacks[";".join([thread.split("/")[0]] + names[::-1])] += 1
        if frames:
            leaf, obj = frames[0]
            self_[leaf] += 1
            # An inlined leaf belongs to the object of the first real frame under it.
            objects[obj or next((o for _, o in frames if o), "?")] += 1
        for name in set(names):
            incl[name] += 1
    folded_out.write_text("".join(f"{s} {n}\n" for s, n in stacks.most_common()))
    lines = [f"# {title}: {total} samples (on-CPU, all threads of the process)", ""]
    if total:
        for heading, counter, top in [("by thread", threads, 20), ("by object (self)", objects, 20),
                                      ("top symbols, self (leaf frame)", self_, 40),
                                      ("top symbols, inclusive (anywhere on the stack)", incl, 60)]:
            lines.append(f"## {heading}")
            everywhere = [name for name, n in counter.items() if counter is incl and n == total]
            lines += [f"{pct(n, total)}  {name}" for name, n in counter.most_common(top + len(everywhere))
                      if name not in everywhere][:top]
            if everywhere:
                lines.append(f"(left out: {len(everywhere)} frames on every stack, such as the thread's start)")
            lines.append("")
    top_out.write_text("\n".join(lines))
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
