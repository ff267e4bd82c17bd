"""Differential test of strand's Avro compatibility checker against the Apache Avro
reference checker (avro.compatibility.ReaderWriterCompatibilityChecker).

For every generated (old, new) pair it asks both checkers both questions — can the new
schema read the old one's data (BACKWARD) and can the old read the new's (FORWARD); FULL is
both — and requires the same answer and the same incompatibility types.

Usage: differential.py <compat_check binary> [pair count]
"""

import json
import subprocess
import sys
from collections import Counter

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

import pairs as pairgen


def reference(reader, writer):
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        reader=avro.schema.parse(json.dumps(reader)),
        writer=avro.schema.parse(json.dumps(writer)),
    )
    ok = result.compatibility is SchemaCompatibilityType.compatible
    kinds = [] if ok else sorted(k.name.upper() for k in result.incompatibilities)
    return ok, kinds


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    generated = pairgen.generate(count)
    checks = []
    for p in generated:
        checks.append({"reader": p["new"], "writer": p["old"]})  # backward
        checks.append({"reader": p["old"], "writer": p["new"]})  # forward
    out = subprocess.run([binary], input=json.dumps(checks), capture_output=True, text=True, check=True)
    ours = json.loads(out.stdout)
    disagreements = []
    outcomes = Counter()
    apache = Counter()
    for i, p in enumerate(generated):
        verdicts = {}
        for direction, check, mine in (
            ("BACKWARD", checks[2 * i], ours[2 * i]),
            ("FORWARD", checks[2 * i + 1], ours[2 * i + 1]),
        ):
            ref_ok, ref_kinds = reference(check["reader"], check["writer"])
            if "error" in mine:
                disagreements.append((p, direction, f"strand could not parse: {mine['error']}"))
                continue
            my_kinds = sorted(k for k, _, _ in mine["incompatibilities"])
            my_ok = not my_kinds
            verdicts[direction] = ref_ok
            if mine.get("apache_avro") is None:
                apache["unparsed"] += 1
            else:
                apache["agree" if mine["apache_avro"] == ref_ok else "disagree"] += 1
            if (ref_ok, ref_kinds) != (my_ok, my_kinds):
                disagreements.append((p, direction, f"reference {ref_ok} {ref_kinds}, strand {my_ok} {my_kinds}"))
        full = verdicts.get("BACKWARD", False) and verdicts.get("FORWARD", False)
        outcomes[(verdicts.get("BACKWARD"), verdicts.get("FORWARD"), full)] += 1
    print(f"{len(generated)} pairs, {len(checks)} reader/writer checks")
    for (b, f, full), n in sorted(outcomes.items(), key=str):
        print(f"  backward={b} forward={f} full={full}: {n}")
    labels = Counter(l for p in generated for l in p["label"].split("+"))
    print(f"  for comparison, apache-avro's schema_compatibility: {dict(apache)}")
    print("  mutations:", ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    for p, direction, why in disagreements[:10]:
        print(f"DISAGREE {direction} [{p['label']}]: {why}\n  old={json.dumps(p['old'])}\n  new={json.dumps(p['new'])}")
    if disagreements:
        print(f"{len(disagreements)} disagreements")
        sys.exit(1)
    print("full agreement with the Avro reference checker")


if __name__ == "__main__":
    main()
