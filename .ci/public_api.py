#!/usr/bin/env python3
"""The public API of xray-lambda (all features), one line per item, against a snapshot.

Reads the rustdoc JSON of the crate (stable rustdoc, with RUSTC_BOOTSTRAP=1 for its one unstable
flag, given to rustdoc alone: in cargo's environment it would reach dependencies' build scripts
and rebuild them, and everything after them, for the next build) and lists every item a user can name: modules, types, functions and methods with their
signatures, constants, macros, re-exports and trait impls. Items under `#[doc(hidden)]` (the
macros' `__private` module) are not part of it. A dependency's type in a signature shows with
its crate's name, so that a new one stands out in review.

  python3 .ci/public_api.py          # fails, with a diff, when the API differs from the snapshot
  python3 .ci/public_api.py --bless  # writes the snapshot (runtime/public-api.txt)
"""
import difflib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAPSHOT = os.path.join(ROOT, "runtime", "public-api.txt")


def rustdoc_json():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    os.makedirs(target, exist_ok=True)
    wrapper = os.path.join(target, "rustdoc-json.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nRUSTC_BOOTSTRAP=1 exec rustdoc "$@"\n')
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, RUSTDOC=wrapper)
    subprocess.run(
        ["cargo", "rustdoc", "-p", "xray-lambda", "--all-features", "--lib", "--quiet", "--",
         "-Z", "unstable-options", "--output-format", "json"],
        cwd=ROOT, env=env, check=True)
    with open(os.path.join(target, "doc", "xray_lambda.json")) as f:
        return json.load(f)


class Api:
    def __init__(self, doc):
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.lines = set()
        # Auto-trait impls, by type.
        self.auto = {}
        # Our own items by the public path the walk first reaches them at (not the private
        # module they are defined in).
        self.public = {}

    # Types, as written in a signature.
    def path_name(self, p):
        known = self.paths.get(str(p.get("id")))
        name = self.public.get(str(p.get("id"))) or (
            "::".join(known["path"]) if known else p.get("path") or p.get("name"))
        return name + self.args(p.get("args"))

    def args(self, a):
        if not a:
            return ""
        if "angle_bracketed" in a:
            ab = a["angle_bracketed"]
            parts = [self.arg(x) for x in ab.get("args", [])]
            parts += [self.constraint(c) for c in ab.get("constraints", ab.get("bindings", []))]
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in a:
            p = a["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in p["inputs"]) + ")"
            return out + (" -> " + self.ty(p["output"]) if p.get("output") else "")
        return ""

    def arg(self, x):
        if "type" in x:
            return self.ty(x["type"])
        if "lifetime" in x:
            return x["lifetime"]
        if "const" in x:
            return str(x["const"].get("expr", "_"))
        return "_"

    def constraint(self, c):
        binding = c.get("binding", {})
        if "equality" in binding:
            eq = binding["equality"]
            return f'{c["name"]} = {self.ty(eq["type"]) if "type" in eq else "_"}'
        return f'{c["name"]}: {self.bounds(binding.get("constraint", []))}'

    def bounds(self, bs):
        out = []
        for b in bs:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                mod = "?" if tb.get("modifier") == "maybe" else ""
                out.append(self.hrtb(tb.get("generic_params")) + mod + self.path_name(tb["trait"]))
            elif "outlives" in b:
                out.append(b["outlives"])
            else:
                out.append("use<..>")
        return " + ".join(out)

    def hrtb(self, params):
        names = [p["name"] for p in params or []]
        return "for<" + ", ".join(names) + "> " if names else ""

    def ty(self, t):
        if t is None:
            return "()"
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.path_name(v)
        if kind == "primitive":
            return v
        if kind == "generic":
            return v
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ")"
        if kind == "slice":
            return "[" + self.ty(v) + "]"
        if kind == "array":
            return f'[{self.ty(v["type"])}; {v["len"]}]'
        if kind == "borrowed_ref":
            lt = (v["lifetime"] + " ") if v.get("lifetime") else ""
            return "&" + lt + ("mut " if v["is_mutable"] else "") + self.ty(v["type"])
        if kind == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + self.ty(v["type"])
        if kind == "impl_trait":
            return "impl " + self.bounds(v)
        if kind == "dyn_trait":
            traits = [self.path_name(x["trait"]) for x in v["traits"]]
            return "dyn " + " + ".join(traits + ([v["lifetime"]] if v.get("lifetime") else []))
        if kind == "qualified_path":
            trait = self.path_name(v["trait"]) if v.get("trait") else "_"
            return f'<{self.ty(v["self_type"])} as {trait}>::{v["name"]}'
        if kind == "function_pointer":
            sig = v["sig"]
            return "fn(" + ", ".join(self.ty(x[1]) for x in sig["inputs"]) + ")" + self.output(sig)
        return kind

    def receiver(self, t):
        if "borrowed_ref" in t and t["borrowed_ref"]["type"] == {"generic": "Self"}:
            return "&mut self" if t["borrowed_ref"]["is_mutable"] else "&self"
        return "self" if t == {"generic": "Self"} else "self: " + self.ty(t)

    def output(self, sig):
        return " -> " + self.ty(sig["output"]) if sig.get("output") else ""

    def generics(self, g):
        params = []
        for p in g.get("params", []):
            k = p["kind"]
            if "lifetime" in k:
                params.append(p["name"])
            elif "type" in k:
                if k["type"].get("is_synthetic"):
                    continue
                b = self.bounds(k["type"].get("bounds", []))
                params.append(p["name"] + (": " + b if b else ""))
            elif "const" in k:
                params.append(f'const {p["name"]}: {self.ty(k["const"]["type"])}')
        where = []
        for w in g.get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                where.append(self.hrtb(bp.get("generic_params"))
                             + f'{self.ty(bp["type"])}: {self.bounds(bp["bounds"])}')
        return ("<" + ", ".join(params) + ">" if params else ""), (
            " where " + ", ".join(where) if where else "")

    def function(self, path, f):
        head = f.get("header", {})
        quals = "".join(q for q, on in (("const ", head.get("is_const")), ("async ", head.get("is_async")),
                                        ("unsafe ", head.get("is_unsafe"))) if on)
        params, where = self.generics(f["generics"])
        inputs = ", ".join(self.receiver(t) if name == "self" else f"{name}: {self.ty(t)}"
                           for name, t in f["sig"]["inputs"])
        return f"pub {quals}fn {path}{params}({inputs}){self.output(f['sig'])}{where}"

    # Items.
    def visit(self, path, item_id, name=None):
        item = self.index.get(str(item_id))
        if item is None:
            return
        (kind, v), = item["inner"].items()
        name = name or (v["name"] if kind == "use" else item["name"])
        full = f"{path}::{name}" if path else name
        self.public.setdefault(str(item_id), full)
        if kind == "module":
            self.lines.add(f"pub mod {full}")
            for child in v["items"]:
                self.visit(full, child)
        elif kind == "use":
            target = v.get("id")
            if target is not None and str(target) in self.index:
                if v["is_glob"]:
                    for child in self.index[str(target)]["inner"]["module"]["items"]:
                        self.visit(path, child)
                else:
                    self.visit(path, target, v["name"])
            else:
                self.lines.add(f"pub use {full} = {v['source']}")
        elif kind in ("struct", "enum", "union"):
            params, where = self.generics(v["generics"])
            mark = "#[non_exhaustive] " if "non_exhaustive" in json.dumps(item.get("attrs")) else ""
            self.lines.add(f"{mark}pub {kind} {full}{params}{where}")
            if kind == "struct":
                sk = v["kind"]
                fields = sk.get("plain", {}).get("fields", []) if isinstance(sk, dict) else []
                if isinstance(sk, dict) and "tuple" in sk:
                    fields = [f for f in sk["tuple"] if f is not None]
                for fid in fields:
                    f = self.index[str(fid)]
                    self.lines.add(f"pub {full}::{f['name']}: {self.ty(f['inner']['struct_field'])}")
            if kind == "enum":
                for vid in v["variants"]:
                    self.lines.add(f"pub {full}::{self.variant(self.index[str(vid)])}")
            for impl_id in v["impls"]:
                self.impl(full, self.index[str(impl_id)])
        elif kind == "trait":
            params, _ = self.generics(v["generics"])
            sup = self.bounds(v.get("bounds", []))
            self.lines.add(f"pub trait {full}{params}" + (f": {sup}" if sup else ""))
            for m in v["items"]:
                self.member(full, self.index[str(m)])
            for impl_id in v.get("implementations", []):
                self.impl(full, self.index[str(impl_id)])
        elif kind == "function":
            self.lines.add(self.function(full, v))
        elif kind == "constant":
            self.lines.add(f"pub const {full}: {self.ty(v['type'])}")
        elif kind == "static":
            self.lines.add(f"pub static {full}: {self.ty(v['type'])}")
        elif kind == "type_alias":
            self.lines.add(f"pub type {full} = {self.ty(v['type'])}")
        elif kind in ("macro", "proc_macro"):
            self.lines.add(f"pub macro {full}!")
        else:
            self.lines.add(f"pub {kind} {full}")

    def variant(self, item):
        vk = item["inner"]["variant"]["kind"]
        if isinstance(vk, dict) and "tuple" in vk:
            fields = [self.ty(self.index[str(f)]["inner"]["struct_field"]) if f is not None else "_"
                      for f in vk["tuple"]]
            return f'{item["name"]}({", ".join(fields)})'
        if isinstance(vk, dict) and "struct" in vk:
            fields = [f'{self.index[str(f)]["name"]}: {self.ty(self.index[str(f)]["inner"]["struct_field"])}'
                      for f in vk["struct"]["fields"]]
            return f'{item["name"]} {{ {", ".join(fields)} }}'
        return item["name"]

    def member(self, owner, item):
        (kind, v), = item["inner"].items()
        if kind == "function":
            self.lines.add(self.function(f"{owner}::{item['name']}", v))
        elif kind == "assoc_const":
            self.lines.add(f"pub const {owner}::{item['name']}: {self.ty(v['type'])}")
        elif kind == "assoc_type":
            self.lines.add(f"pub type {owner}::{item['name']}")

    def impl(self, owner, item):
        v = item["inner"]["impl"]
        if v.get("blanket_impl") is not None:
            return
        params, where = self.generics(v["generics"])
        if v.get("trait") is None:
            for m in v["items"]:
                if self.index.get(str(m), {}).get("visibility") == "public":
                    self.member(owner, self.index[str(m)])
            return
        neg = "!" if v.get("is_negative") else ""
        trait = self.path_name(v["trait"])
        if trait == "core::marker::StructuralPartialEq":
            return  # comes with every derived PartialEq, which is listed
        if v.get("is_synthetic"):
            # Auto traits: one line per type (seven lines a type hid the lines that matter).
            short = trait.rsplit("::", 1)[-1]
            bound = where.replace(" where ", "") if where else ""
            self.auto.setdefault(self.ty(v["for"]), set()).add(f"{neg}{short}" + (f" [{bound}]" if bound else ""))
            return
        self.lines.add(f"impl{params} {neg}{trait} for {self.ty(v['for'])}{where}")

    def auto_lines(self):
        for ty, traits in self.auto.items():
            self.lines.add(f"auto {ty}: " + ", ".join(sorted(traits)))


def main():
    doc = rustdoc_json()
    api = Api(doc)
    api.visit("", doc["root"])  # learns each item's public path
    api.lines.clear()
    api.auto.clear()
    api.visit("", doc["root"])
    api.auto_lines()
    current = f"# rustdoc JSON format {doc['format_version']}\n" + "\n".join(sorted(api.lines)) + "\n"
    if "--bless" in sys.argv:
        with open(SNAPSHOT, "w") as f:
            f.write(current)
        print(f"public API: {len(api.lines)} items written to {os.path.relpath(SNAPSHOT, ROOT)}")
        return 0
    with open(SNAPSHOT) as f:
        recorded = f.read()
    if current == recorded:
        print(f"public API: {len(api.lines)} items, as in {os.path.relpath(SNAPSHOT, ROOT)}")
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        recorded.splitlines(True), current.splitlines(True), "snapshot", "now"))
    print("the public API changed: review the diff, then `python3 .ci/public_api.py --bless`")
    return 1


if __name__ == "__main__":
    sys.exit(main())
