"""Generates varied (old, new) Avro schema pairs for the differential compatibility test.

Each pair is an evolution a user might try (or get wrong): fields added or removed with and
without defaults, numeric promotions and demotions, string<->bytes, enums gaining or losing
symbols with and without a default, unions widening and narrowing, nested records, arrays,
maps, fixed sizes, renames with and without aliases, namespaces, logical types, recursion.
The generator is seeded, so a failure names a pair that can be reproduced.
"""

import copy
import json
import random
import sys

PRIMS = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
LOGICAL = [
    {"type": "int", "logicalType": "date"},
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "int", "logicalType": "time-millis"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
]
DEFAULTS = {
    "null": None,
    "boolean": False,
    "int": 0,
    "long": 0,
    "float": 0.0,
    "double": 0.0,
    "bytes": "",
    "string": "",
}


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.n = 0

    def name(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def prim(self):
        return self.r.choice(PRIMS[1:])

    def leaf(self, depth, ns):
        """A random schema, not too deep."""
        c = self.r.random()
        if depth <= 0 or c < 0.45:
            return self.prim()
        if c < 0.55:
            return copy.deepcopy(self.r.choice(LOGICAL))
        if c < 0.63:
            return {"type": "array", "items": self.leaf(depth - 1, ns)}
        if c < 0.70:
            return {"type": "map", "values": self.leaf(depth - 1, ns)}
        if c < 0.78:
            syms = [f"S{i}" for i in range(self.r.randint(1, 4))]
            return {"type": "enum", "name": self.name("E"), "symbols": syms}
        if c < 0.84:
            return {"type": "fixed", "name": self.name("F"), "size": self.r.choice([4, 8, 16])}
        if c < 0.92:
            branches = self.r.sample(["null", "int", "long", "string", "bytes", "double"], self.r.randint(2, 3))
            return branches
        return self.record(depth - 1, ns)

    def record(self, depth, ns=None, nfields=None):
        rec = {"type": "record", "name": self.name("R"), "fields": []}
        if ns is not None:
            rec["namespace"] = ns
        for i in range(nfields if nfields is not None else self.r.randint(1, 4)):
            rec["fields"].append({"name": f"f{i}", "type": self.leaf(depth, ns)})
        return rec


def default_for(schema):
    """A valid default for a schema, or a marker if none is easy."""
    if isinstance(schema, str):
        return DEFAULTS.get(schema, None)
    if isinstance(schema, list):
        return default_for(schema[0])
    t = schema["type"]
    if t in DEFAULTS:
        return DEFAULTS[t]
    if t == "array":
        return []
    if t == "map":
        return {}
    if t == "enum":
        return schema["symbols"][0]
    if t == "fixed":
        return "\u0000" * schema["size"]
    if t == "record":
        return {f["name"]: default_for(f["type"]) for f in schema["fields"]}
    return None


def named_types(schema, out):
    """Every named type defined in a schema, by name."""
    if isinstance(schema, list):
        for s in schema:
            named_types(s, out)
    elif isinstance(schema, dict):
        t = schema.get("type")
        if t in ("record", "enum", "fixed"):
            out.append(schema)
        if t == "record":
            for f in schema["fields"]:
                named_types(f["type"], out)
        elif t == "array":
            named_types(schema["items"], out)
        elif t == "map":
            named_types(schema["values"], out)
        elif isinstance(t, (dict, list)):
            named_types(t, out)


def records(schema):
    out = []
    named_types(schema, out)
    return [s for s in out if s["type"] == "record"]


# --- mutations: each takes (gen, schema) and changes the copy in place, returning a label ---

PROMOTE = {"int": ["long", "float", "double"], "long": ["float", "double"], "float": ["double"],
           "string": ["bytes"], "bytes": ["string"]}


def m_add_field(g, s):
    rec = g.r.choice(records(s))
    t = g.leaf(1, rec.get("namespace"))
    f = {"name": g.name("added"), "type": t}
    with_default = g.r.random() < 0.5
    if with_default:
        f["default"] = default_for(t)
    rec["fields"].insert(g.r.randint(0, len(rec["fields"])), f)
    return "add_field_default" if with_default else "add_field"


def m_add_optional(g, s):
    rec = g.r.choice(records(s))
    rec["fields"].append({"name": g.name("opt"), "type": ["null", g.prim()], "default": None})
    return "add_optional"


def m_remove_field(g, s):
    rec = g.r.choice(records(s))
    if len(rec["fields"]) > 1:
        rec["fields"].pop(g.r.randrange(len(rec["fields"])))
    return "remove_field"


def m_change_type(g, s):
    rec = g.r.choice(records(s))
    f = g.r.choice(rec["fields"])
    t = f["type"]
    if isinstance(t, str) and t in PROMOTE and g.r.random() < 0.7:
        f["type"] = g.r.choice(PROMOTE[t])
    elif isinstance(t, str) and g.r.random() < 0.5:
        back = [k for k, v in PROMOTE.items() if t in v]
        f["type"] = g.r.choice(back) if back else g.prim()
    else:
        f["type"] = g.leaf(1, rec.get("namespace"))
    f.pop("default", None)
    return "change_type"


def m_rename_field(g, s):
    rec = g.r.choice(records(s))
    f = g.r.choice(rec["fields"])
    old = f["name"]
    f["name"] = g.name("renamed")
    if g.r.random() < 0.6:
        f["aliases"] = [old]
    return "rename_field"


def m_rename_record(g, s):
    rec = g.r.choice(records(s))
    old_full = rec["name"] if not rec.get("namespace") else f"{rec['namespace']}.{rec['name']}"
    rec["name"] = g.name("Renamed")
    c = g.r.random()
    if c < 0.4:
        rec["aliases"] = [old_full]
    elif c < 0.6:
        rec["aliases"] = [old_full.split(".")[-1]]
    return "rename_record"


def m_namespace(g, s):
    rec = g.r.choice(records(s))
    c = g.r.random()
    if c < 0.4:
        rec["namespace"] = g.r.choice(["a", "a.b", "other"])
    elif c < 0.7:
        rec.pop("namespace", None)
    else:
        rec["namespace"] = ""
    return "namespace"


def all_of(s, kind):
    out = []
    named_types(s, out)
    return [x for x in out if x["type"] == kind]


def m_enum(g, s):
    enums = all_of(s, "enum")
    if not enums:
        rec = g.r.choice(records(s))
        rec["fields"].append({"name": g.name("e"), "type": {"type": "enum", "name": g.name("E"), "symbols": ["A", "B"]}})
        return "enum_added_field"
    e = g.r.choice(enums)
    c = g.r.random()
    if c < 0.35:
        e["symbols"].append(g.name("NEW"))
    elif c < 0.6 and len(e["symbols"]) > 1:
        e["symbols"].pop(g.r.randrange(len(e["symbols"])))
    elif c < 0.8:
        e["default"] = e["symbols"][0]
    else:
        e["symbols"].reverse()
    return "enum"


def m_fixed(g, s):
    fixed = all_of(s, "fixed")
    if not fixed:
        return m_change_type(g, s)
    f = g.r.choice(fixed)
    if g.r.random() < 0.6:
        f["size"] = f["size"] * 2
    else:
        f["name"] = g.name("G")
    return "fixed"


def walk_fields(s):
    for rec in records(s):
        for f in rec["fields"]:
            yield f


def m_union(g, s):
    fields = list(walk_fields(s))
    f = g.r.choice(fields)
    t = f["type"]
    c = g.r.random()
    if isinstance(t, list):
        if c < 0.4 and len(t) > 1:
            t.pop(g.r.randrange(len(t)))
            if len(t) == 1 and g.r.random() < 0.5:
                f["type"] = t[0]
        else:
            extra = [p for p in ["null", "int", "long", "string", "bytes", "double", "boolean"] if p not in t]
            if extra:
                t.append(g.r.choice(extra))
    elif isinstance(t, str) and t != "null":
        f["type"] = ["null", t] if c < 0.5 else [t, "null"]
    else:
        f["type"] = ["null", g.prim()] if g.prim() != "null" else ["null", "string"]
    f.pop("default", None)
    if isinstance(f["type"], list) and f["type"][0] == "null" and g.r.random() < 0.5:
        f["default"] = None
    return "union"


def m_collection(g, s):
    for f in walk_fields(s):
        t = f["type"]
        if isinstance(t, dict) and t.get("type") == "array":
            t["items"] = g.r.choice(PROMOTE.get(t["items"], [g.prim()])) if isinstance(t["items"], str) else g.prim()
            return "array_items"
        if isinstance(t, dict) and t.get("type") == "map":
            t["values"] = g.r.choice(PROMOTE.get(t["values"], [g.prim()])) if isinstance(t["values"], str) else g.prim()
            return "map_values"
    f = g.r.choice(list(walk_fields(s)))
    f["type"] = {"type": g.r.choice(["array", "map"]), **({"items": "int"} if g.r.random() < 0.5 else {"values": "int"})}
    if "items" in f["type"] and f["type"]["type"] == "map":
        f["type"] = {"type": "map", "values": "int"}
    if "values" in f["type"] and f["type"]["type"] == "array":
        f["type"] = {"type": "array", "items": "int"}
    f.pop("default", None)
    return "collection"


def m_logical(g, s):
    f = g.r.choice(list(walk_fields(s)))
    c = g.r.random()
    if c < 0.5:
        f["type"] = copy.deepcopy(g.r.choice(LOGICAL))
    elif isinstance(f["type"], dict) and "logicalType" in f["type"]:
        f["type"] = f["type"]["type"]
    else:
        f["type"] = {"type": "long", "logicalType": "timestamp-millis"}
    f.pop("default", None)
    return "logical"


def m_nested(g, s):
    f = g.r.choice(list(walk_fields(s)))
    f["type"] = g.record(1, None, g.r.randint(1, 2))
    if g.r.random() < 0.3:
        f["default"] = default_for(f["type"])
    else:
        f.pop("default", None)
    return "nested"


def m_field_default(g, s):
    f = g.r.choice(list(walk_fields(s)))
    if "default" in f:
        del f["default"]
    else:
        f["default"] = default_for(f["type"])
    return "field_default"


MUTATIONS = [m_add_field, m_add_optional, m_remove_field, m_change_type, m_rename_field,
             m_rename_record, m_namespace, m_enum, m_fixed, m_union, m_collection, m_logical,
             m_nested, m_field_default]


def recursive(g):
    name = g.name("Node")
    return {"type": "record", "name": name, "fields": [
        {"name": "value", "type": "int"},
        {"name": "next", "type": ["null", name], "default": None},
    ]}


def fixups(schema):
    """Drops defaults that no longer fit their field's type (an invalid schema proves
    nothing about compatibility) and de-duplicates field names."""
    for rec in records(schema):
        seen = set()
        kept = []
        for f in rec["fields"]:
            if f["name"] in seen:
                continue
            seen.add(f["name"])
            kept.append(f)
            if "default" in f:
                f["default"] = default_for(f["type"])
        rec["fields"] = kept
    return schema


def valid(schema):
    import avro.schema

    try:
        avro.schema.parse(json.dumps(schema))
        return True
    except Exception:
        return False


def generate(count, seed=20261125):
    g = Gen(seed)
    pairs = []
    while len(pairs) < count:
        base = g.record(2, g.r.choice([None, None, "com.acme", "a.b"])) if g.r.random() > 0.05 else recursive(g)
        new = copy.deepcopy(base)
        labels = []
        for _ in range(g.r.choice([1, 1, 1, 2, 3])):
            labels.append(g.r.choice(MUTATIONS)(g, new))
        fixups(base)
        fixups(new)
        if not (valid(base) and valid(new)):
            continue
        pairs.append({"label": "+".join(labels), "old": base, "new": new})
    # A few whole-schema (non-record) pairs: promotions between primitives and unions.
    for a in PRIMS:
        for b in PRIMS:
            pairs.append({"label": "primitive", "old": a, "new": b})
    pairs.append({"label": "union_vs_prim", "old": ["null", "int"], "new": "int"})
    pairs.append({"label": "union_vs_prim", "old": "int", "new": ["null", "long"]})
    return pairs


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    with open(sys.argv[1], "w") as out:
        json.dump(generate(count), out)
