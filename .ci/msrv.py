#!/usr/bin/env python3
import json, subprocess, sys
# The rust-version a user needs for the dependency versions Cargo.lock holds: the highest
# `rust-version` among the normal (not dev) dependencies of the published crates, all features.
m = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features"]))
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
roots = [p["id"] for p in m["packages"] if p["name"] in ("xray-lambda", "xray-lambda-macros")]
seen, todo = set(), list(roots)
while todo:
    i = todo.pop()
    if i in seen:
        continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        if any(k["kind"] in (None, "build") for k in d["dep_kinds"]):
            todo.append(d["pkg"])
def v(s): return tuple(int(x) for x in (s or "0").split("."))
declared = next(p["rust_version"] for p in m["packages"] if p["name"] == "xray-lambda")
need = max(seen, key=lambda i: v(pkgs[i].get("rust_version")))
print(f"declared rust-version {declared}; the dependency set needs {pkgs[need].get('rust_version')} ({pkgs[need]['name']} {pkgs[need]['version']})")
sys.exit(0 if v(pkgs[need].get("rust_version")) <= v(declared) else 1)
