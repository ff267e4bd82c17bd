#!/usr/bin/env python3
"""Summarise one bench/run: parse the raw tool outputs, print the markdown table, plot W3.

    report.py OUT_DIR [PNG]

OUT_DIR holds raw/SYSTEM.rROUND.WORKLOAD.txt (the tools' own output) and measures.tsv
(name, system, round, value lines the harness measured itself). Writes OUT_DIR/results.md
(also printed) and, when matplotlib is importable and PNG is given, the W3 latency plot.
"""
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PRODUCER = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th"
)
E2E = re.compile(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)")
WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)

# name, label, unit, True if higher is better, target ratio (strand/Kafka) or None
METRICS = [
    ("w1", "W1 produce, acks=1, 1 KiB, 6 partitions", "MB/s", True, 1.5),
    ("w2", "W2 produce, acks=all, 1 KiB, 6 partitions", "MB/s", True, 1.5),
    ("w3_rate", "W3 produce rate achieved (target 20 MB/s)", "MB/s", True, None),
    ("w3_p50", "W3 produce latency p50 at 20 MB/s", "ms", False, None),
    ("w3_p99", "W3 produce latency p99 at 20 MB/s", "ms", False, 0.5),
    ("w3_p999", "W3 produce latency p99.9 at 20 MB/s", "ms", False, None),
    ("e2e_p50", "W3b end-to-end latency p50 (EndToEndLatency, one at a time)", "ms", False, None),
    ("e2e_p99", "W3b end-to-end latency p99", "ms", False, None),
    ("e2e_p999", "W3b end-to-end latency p99.9", "ms", False, None),
    ("w4", "W4 consume from the start (fetch MB/s)", "MB/s", True, None),
    ("idle_rss", "W5 idle RSS", "MiB", False, 0.1),
    ("w1_rss", "W5 peak RSS through W1", "MiB", False, None),
    ("startup", "W5 process start to first Metadata answer", "ms", False, 0.1),
    ("restart_1000", "W5 restart to first Metadata answer, holding W1–W4 data + 1 000 partitions", "ms", False, None),
    ("w6_rps", "W6 registry GET /schemas/ids/{id}", "req/s", True, None),
    ("w6_p99", "W6 registry GET /schemas/ids/{id} p99", "ms", False, None),
]


def parse_raw(path: Path, values):
    system, rnd, workload = path.name[: -len(".txt")].split(".", 2)
    text = path.read_text(errors="replace")

    def put(name, value):
        values[name][system].append(float(value))

    if workload in ("w1", "w2", "w3"):
        m = PRODUCER.findall(text)
        if m:
            last = m[-1]
            if workload == "w3":
                put("w3_rate", last[2])
                put("w3_p50", last[5])
                put("w3_p99", last[7])
                put("w3_p999", last[8])
            else:
                put(workload, last[2])
    elif workload == "e2e":
        m = E2E.search(text)
        if m:
            put("e2e_p50", m.group(1))
            put("e2e_p99", m.group(2))
            put("e2e_p999", m.group(3))
    elif workload == "w4":
        lines = [l for l in text.splitlines() if l.count(",") >= 8]
        if len(lines) >= 2:
            header = [h.strip() for h in lines[0].split(",")]
            row = [c.strip() for c in lines[-1].split(",")]
            if "fetch.MB.sec" in header and len(row) == len(header):
                put("w4", row[header.index("fetch.MB.sec")])
    elif workload == "w6":
        rps, p99 = WRK_RPS.search(text), WRK_P99.search(text)
        if rps and p99:
            put("w6_rps", rps.group(1))
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
            put("w6_p99", float(p99.group(1)) * scale)


def fmt(x):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}".replace(",", " ")
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(xs):
    if not xs:
        return "–", None
    med = statistics.median(xs)
    return f"{fmt(med)} ({fmt(min(xs))}–{fmt(max(xs))}, n={len(xs)})", med


def main():
    out = Path(sys.argv[1])
    png = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    values = defaultdict(lambda: defaultdict(list))
    for path in sorted((out / "raw").glob("*.txt")):
        parse_raw(path, values)
    machine = {}
    for line in (out / "measures.tsv").read_text().splitlines():
        name, system, _rnd, value = line.split("\t")
        if system == "machine":
            machine[name] = value
        else:
            values[name][system].append(float(value))

    lines = ["| figure | unit | Apache Kafka median (min–max) | strand median (min–max) | strand/Kafka | target |",
             "|---|---|---|---|---|---|"]
    for name, label, unit, higher, target in METRICS:
        k, kmed = cell(values[name]["kafka"])
        s, smed = cell(values[name]["strand"])
        if k == "–" and s == "–":
            continue
        ratio = f"{smed / kmed:.2f}×" if kmed and smed is not None else "–"
        goal = "–"
        if target is not None and kmed and smed is not None:
            op = "≥" if higher else "≤"
            met = kmed and smed is not None and (smed / kmed >= target if higher else smed / kmed <= target)
            goal = f"{op} {target}× ({'met' if met else 'MISSED'})"
        lines.append(f"| {label} | {unit} | {k} | {s} | {ratio} | {goal} |")
    lines.append("")
    for key, label in [("disk_mbps", "disk sequential write, O_DIRECT 1 MiB blocks (fio), MB/s"),
                       ("loopback_gbps", "loopback TCP, one stream (iperf3), Gbit/s"),
                       ("loadavg_start", "load average at start"),
                       ("loadavg_end", "load average at end")]:
        if machine.get(key):
            lines.append(f"- {label}: {machine[key]}")
    if machine.get("disk_mbps") and values["w1"]:
        disk = float(machine["disk_mbps"])
        for sys_ in ("kafka", "strand"):
            if values["w1"][sys_]:
                lines.append(f"- W1 {sys_} median as a fraction of the disk's sequential write: "
                             f"{statistics.median(values['w1'][sys_]) / disk:.1%}")
    if machine.get("loopback_gbps") and values["w4"]:
        net = float(machine["loopback_gbps"]) * 1000 / 8
        for sys_ in ("kafka", "strand"):
            if values["w4"][sys_]:
                lines.append(f"- W4 {sys_} median as a fraction of loopback TCP: "
                             f"{statistics.median(values['w4'][sys_]) / net:.1%}")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    (out / "values.json").write_text(json.dumps(values, indent=1))
    print(text)

    if png is None:
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no plot", file=sys.stderr)
        return
    groups = [("W3 produce latency at 20 MB/s", ["w3_p50", "w3_p99", "w3_p999"]),
              ("W3b end-to-end latency (one record at a time)", ["e2e_p50", "e2e_p99", "e2e_p999"])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, (title, names) in zip(axes, groups):
        xs = range(len(names))
        for i, (sys_, label) in enumerate([("kafka", "Apache Kafka"), ("strand", "strand")]):
            meds = [statistics.median(values[n][sys_]) if values[n][sys_] else 0 for n in names]
            ax.bar([x + (i - 0.5) * 0.38 for x in xs], meds, width=0.38, label=label)
        ax.set_xticks(list(xs), ["p50", "p99", "p99.9"])
        ax.set_ylabel("ms (median of rounds)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"plot written to {png}")


if __name__ == "__main__":
    main()
