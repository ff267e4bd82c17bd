#!/usr/bin/env python3
"""Summarise one bench/run: parse the raw tool outputs, print the markdown table, plot W3.

    report.py OUT_DIR [PNG]

OUT_DIR holds raw/SYSTEM.rROUND.WORKLOAD.txt (the tools' own output: Kafka's Java tools for
w1..w4 and e2e, bench/rdkafka/perf.py's `RESULT {json}` line for rdk-w1..rdk-w4, wrk for w6)
and measures.tsv (name, system, round, value lines the harness measured itself). Writes
OUT_DIR/results.md (also printed) and, when matplotlib is importable and PNG is given, the W3
latency plot.
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
STEADY = re.compile(
    r"(\d+) steady state records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg "
    r"latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th"
)
E2E = re.compile(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)")
WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)

# name, label, unit, True if higher is better, target ratio (strand/Kafka) or None
METRICS = [
    ("w1", "W1 produce, acks=1, 1 KiB, 6 partitions (Java)", "MB/s", True, 1.5),
    ("rdk_w1", "W1 produce, acks=1, 1 KiB, 6 partitions (librdkafka)", "MB/s", True, 1.5),
    ("w2", "W2 produce, acks=all, 1 KiB, 6 partitions (Java)", "MB/s", True, 1.5),
    ("rdk_w2", "W2 produce, acks=all, 1 KiB, 6 partitions (librdkafka)", "MB/s", True, 1.5),
    ("w2pc", "W2pc the same, strand answering acks=all from the page cache as Kafka does (Java)", "MB/s", True, 1.5),
    ("rdk_w2pc", "W2pc the same, strand answering acks=all from the page cache as Kafka does (librdkafka)", "MB/s", True, 1.5),
    ("w3_rate", "W3 produce rate achieved, target 20 MB/s (Java)", "MB/s", True, None),
    ("w3_p50", "W3 produce latency p50 at 20 MB/s, steady state (Java)", "ms", False, None),
    ("w3_p99", "W3 produce latency p99 at 20 MB/s, steady state (Java)", "ms", False, 0.5),
    ("w3_p999", "W3 produce latency p99.9 at 20 MB/s, steady state (Java)", "ms", False, None),
    ("rdk_w3_rate", "W3 produce rate achieved, target 20 MB/s (librdkafka)", "MB/s", True, None),
    ("rdk_w3_p50", "W3 produce latency p50 at 20 MB/s, steady state (librdkafka)", "ms", False, None),
    ("rdk_w3_p99", "W3 produce latency p99 at 20 MB/s, steady state (librdkafka)", "ms", False, 0.5),
    ("rdk_w3_p999", "W3 produce latency p99.9 at 20 MB/s, steady state (librdkafka)", "ms", False, None),
    ("e2e_p50", "W3b end-to-end latency p50 (Java EndToEndLatency, one at a time)", "ms", False, None),
    ("e2e_p99", "W3b end-to-end latency p99 (Java)", "ms", False, None),
    ("e2e_p999", "W3b end-to-end latency p99.9 (Java)", "ms", False, None),
    ("w4", "W4 consume from the start, fetch MB/s (Java)", "MB/s", True, None),
    ("rdk_w4", "W4 consume from the start, fetch MB/s (librdkafka)", "MB/s", True, None),
    ("idle_rss", "W5 idle RSS", "MiB", False, 0.1),
    ("w1_rss", "W5 peak RSS through W1", "MiB", False, None),
    ("startup", "W5 process start to first Metadata answer", "ms", False, 0.1),
    ("restart_1000", "W5 restart to first Metadata answer, holding W1–W4 data + 1 000 partitions", "ms", False, None),
    ("w6_rps", "W6 registry GET /schemas/ids/{id}", "req/s", True, None),
    ("w6_p99", "W6 registry GET /schemas/ids/{id} p99", "ms", False, None),
]

# Figures measured on strand only, compared with this Kafka figure.
PEER = {"w2pc": "w2", "rdk_w2pc": "rdk_w2"}


def rdkafka_result(text):
    """The last `RESULT {json}` line of bench/rdkafka/perf.py, or None."""
    lines = [l for l in text.splitlines() if l.startswith("RESULT ")]
    if not lines:
        return None
    try:
        return json.loads(lines[-1][len("RESULT "):])
    except ValueError:
        return None


def parse_raw(path: Path, values, settings):
    parts = path.name[: -len(".txt")].split(".", 2)
    if len(parts) != 3:  # not a SYSTEM.rROUND.WORKLOAD output (e.g. inferno-install.txt)
        return
    system, rnd, workload = parts
    text = path.read_text(errors="replace")

    def put(name, value):
        if value is not None:
            values[name][system].append(float(value))

    if workload.startswith("rdk-w"):
        res = rdkafka_result(text)
        # Only complete runs count: a run cut short by its timeout says nothing of the rate.
        if res is None or res.get("errors") or res.get("undelivered"):
            return
        key = workload.replace("-", "_")
        settings[f"{res['mode']} {res.get('client', '')}"] = res.get("settings")
        if key == "rdk_w3":
            put("rdk_w3_rate", res["mb_per_s"])
            put("rdk_w3_p50", res["latency_p50_ms"])
            put("rdk_w3_p99", res["latency_p99_ms"])
            put("rdk_w3_p999", res["latency_p999_ms"])
        elif key == "rdk_w4":
            put("rdk_w4", res["fetch_mb_per_s"])
        else:
            put(key, res["mb_per_s"])
    elif workload in ("w1", "w2", "w2pc", "w3"):
        m = PRODUCER.findall(text)
        if m:
            last = m[-1]
            steady = STEADY.findall(text)
            if workload == "w3" and steady:
                # With --warmup-records, the steady-state summary leaves the warm-up out.
                last = steady[-1]
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
    settings = {}
    for path in sorted((out / "raw").glob("*.txt")):
        parse_raw(path, values, settings)
    machine = {}
    for line in (out / "measures.tsv").read_text().splitlines():
        name, system, _rnd, value = line.split("\t")
        if system == "machine":
            machine[name] = value
        else:
            try:
                values[name][system].append(float(value))
            except ValueError:  # the harness could not measure it (e.g. the server had died)
                print(f"skipping {name} of {system} round {_rnd}: {value!r}", file=sys.stderr)

    lines = ["| figure | unit | Apache Kafka median (min–max) | strand median (min–max) | strand/Kafka | target |",
             "|---|---|---|---|---|---|"]
    for name, label, unit, higher, target in METRICS:
        # W2pc has no Kafka run of its own: it is strand's W2 on Kafka's terms.
        k, kmed = cell(values[PEER.get(name, name)]["kafka"])
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
    for key, label in [("nodes", "nodes of each system (bench/run --nodes; above 1: replication factor "
                                  "min(nodes, 3), min.insync.replicas 2)"),
                       ("disk_mbps", "disk sequential write, O_DIRECT 1 MiB blocks (fio), MB/s"),
                       ("loopback_gbps", "loopback TCP, one stream (iperf3), Gbit/s"),
                       ("loadavg_start", "load average at start"),
                       ("loadavg_end", "load average at end")]:
        if machine.get(key):
            lines.append(f"- {label}: {machine[key]}")
    # The tools' MB is 1024 * 1024 bytes; fio's and iperf3's figures here are decimal.
    for metric, key, limit in [("w1", "disk_mbps", "the disk's sequential write"),
                               ("rdk_w1", "disk_mbps", "the disk's sequential write"),
                               ("w4", "loopback_gbps", "loopback TCP"),
                               ("rdk_w4", "loopback_gbps", "loopback TCP")]:
        if not machine.get(key):
            continue
        cap = float(machine[key]) * (1000 / 8 if key == "loopback_gbps" else 1)
        client = "librdkafka" if metric.startswith("rdk") else "Java"
        for sys_ in ("kafka", "strand"):
            if values[metric][sys_]:
                mb = statistics.median(values[metric][sys_]) * 1.048576
                lines.append(f"- {metric.split('_')[-1].upper()} ({client}) {sys_} median as a fraction "
                             f"of {limit}: {mb / cap:.1%}")
    lines.append("")
    lines.append("Client settings, the same against both systems:")
    lines.append("- Java (kafka-tools ProducerPerformance, EndToEndLatency, ConsumerPerformance): the "
                 "kafka-clients defaults plus acks: linger.ms=5, batch.size=16384, compression.type=none, "
                 "buffer.memory=33554432, max.in.flight.requests.per.connection=5, enable.idempotence on "
                 "only with acks=all; consumer fetch.max.bytes=52428800, max.partition.fetch.bytes=1048576")
    per_run = ("bootstrap.servers", "group.id", "acks", "enable.idempotence")
    for what, conf in sorted(settings.items()):
        shown = {k: v for k, v in (conf or {}).items() if k not in per_run}
        extra = ", acks as the workload, enable.idempotence only with acks=all" if "acks" in (conf or {}) else ""
        lines.append(f"- librdkafka {what}: {json.dumps(shown)}{extra}")
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
    groups = [("W3 produce latency at 20 MB/s (Java)", ["w3_p50", "w3_p99", "w3_p999"]),
              ("W3 produce latency at 20 MB/s (librdkafka)", ["rdk_w3_p50", "rdk_w3_p99", "rdk_w3_p999"]),
              ("W3b end-to-end latency (Java, one at a time)", ["e2e_p50", "e2e_p99", "e2e_p999"])]
    groups = [g for g in groups if any(values[n][s] for n in g[1] for s in ("kafka", "strand"))]
    if not groups:
        print("no W3 figures: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.6), squeeze=False)
    axes = axes[0]
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
