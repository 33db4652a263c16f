#!/usr/bin/env python3
"""Generates the `shapes` crate's models and Rust types from botocore's service models.

Reads shapes/operations.toml (the operations kec2 implements, per service), loads each
service's model from the pinned botocore, and writes under shapes/:

  BOTOCORE_VERSION                the botocore version the files were made from
  src/services.rs                 the service modules and the SERVICES table
  src/<module>/model.json         the trimmed model: metadata, the listed operations and the
                                  closure of the shapes they reference, without documentation
  src/<module>/mod.rs             MODEL_JSON, OPERATIONS, for_each_operation, the type modules
  src/<module>/ops.rs             one marker type per operation implementing crate::Operation
  src/<module>/types_<x>.rs       the Rust types of the shapes whose names start with <x>

The parts: botocore_model.py (loading, closure, trimming), rust_names.py (names and doc
comments), rust_code.py (the Rust code of a service); this file reads operations.toml, writes
or checks the files.

It needs botocore 1.44.18 exactly, in a virtualenv, and rustfmt on the PATH:
  python3 -m venv /var/cache/kec2/venv
  /var/cache/kec2/venv/bin/pip install botocore==1.44.18

Usage (scripts/gen-shapes/README.md says more):
  /var/cache/kec2/venv/bin/python gen_shapes.py            write the files
  /var/cache/kec2/venv/bin/python gen_shapes.py --check    exit 1 naming the files a run
                                                           would change or remove
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib

from botocore_model import BOTOCORE_VERSION, die
from rust_code import GENERATED, Service, services_code


def generate(shapes_dir, out_dir):
    with open(os.path.join(shapes_dir, "operations.toml"), "rb") as f:
        config = tomllib.load(f)
    services = []
    for name, entry in config.items():
        ops = entry.get("operations", [])
        if len(set(ops)) != len(ops):
            die(f"{name}: an operation is listed twice in operations.toml")
        module = entry.get("module", name.replace("-", "_"))
        services.append(Service(name, module, ops, entry.get("extensions")))
    files = {"BOTOCORE_VERSION": BOTOCORE_VERSION + "\n",
             "src/services.rs": services_code(services)}
    for s in services:
        files.update(s.files())
    for path, text in files.items():
        full = os.path.join(out_dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
    rust = [os.path.join(out_dir, p) for p in files if p.endswith(".rs")]
    subprocess.run(["rustfmt", "--edition", "2024", *rust], check=True)
    return sorted(files), [s.module for s in services]


def generated_in_repo(shapes_dir, modules):
    """The generated files now in the repository: the service directories' files and the two
    top-level ones."""
    found = [p for p in ("BOTOCORE_VERSION", "src/services.rs")
             if os.path.exists(os.path.join(shapes_dir, p))]
    src = os.path.join(shapes_dir, "src")
    for d in sorted(os.listdir(src)):
        full = os.path.join(src, d)
        if os.path.isdir(full) and (d in modules or is_generated_dir(full)):
            found += [f"src/{d}/{f}" for f in sorted(os.listdir(full))]
    return found


def is_generated_dir(path):
    mod = os.path.join(path, "mod.rs")
    return os.path.exists(mod) and open(mod, encoding="utf-8").readline().startswith(GENERATED[:40])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a run would change a file")
    parser.add_argument("--shapes-dir", metavar="DIR",
                        help="the crate to generate into, with its operations.toml "
                        "(default: the repository's shapes/)")
    args = parser.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
    shapes_dir = os.path.abspath(args.shapes_dir or os.path.join(root, "shapes"))
    with tempfile.TemporaryDirectory() as tmp:
        files, modules = generate(shapes_dir, tmp)
        existing = generated_in_repo(shapes_dir, modules)
        changed = []
        for p in files:
            new = open(os.path.join(tmp, p), "rb").read()
            old_path = os.path.join(shapes_dir, p)
            old = open(old_path, "rb").read() if os.path.exists(old_path) else None
            if new != old:
                changed.append(p)
        stale = [p for p in existing if p not in files]
        if args.check:
            for p in changed:
                print(f"gen_shapes: would change shapes/{p}")
            for p in stale:
                print(f"gen_shapes: would remove shapes/{p}")
            if changed or stale:
                sys.exit(1)
            print(f"gen_shapes: {len(files)} files up to date")
            return
        for p in stale:
            os.remove(os.path.join(shapes_dir, p))
        for p in changed:
            dest = os.path.join(shapes_dir, p)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(tmp, p), dest)
        print(f"gen_shapes: {len(files)} files, {len(changed)} changed, {len(stale)} removed")


if __name__ == "__main__":
    main()
