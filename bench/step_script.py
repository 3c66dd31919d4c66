"""The command every generated stage runs (copied into the workspace as
``tools/step.py``).

It reads its deps (file contents; for directories the sorted names and
sizes of every file), mixes in ``--value`` strings, and writes each out as a
small deterministic JSON document, so the same inputs always give the same
bytes.  Standard library only: it runs under whatever ``python`` is on PATH.
"""

import argparse
import hashlib
import json
import os


def digest_inputs(deps, values, name):
    digest = hashlib.sha256(name.encode())
    for value in values:
        digest.update(b"\0v" + value.encode())
    for dep in deps:
        digest.update(b"\0d" + dep.encode())
        if os.path.isdir(dep):
            for top, dirs, files in os.walk(dep):
                dirs.sort()
                for file in sorted(files):
                    path = os.path.join(top, file)
                    rel = os.path.relpath(path, dep)
                    digest.update(f"{rel}:{os.path.getsize(path)}".encode())
        else:
            with open(dep, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def write(path, text):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--dep", action="append", default=[])
    parser.add_argument("--value", action="append", default=[])
    parser.add_argument("--out", action="append", default=[])
    parser.add_argument("--dir-out", action="append", default=[], help="DIR:NFILES")
    parser.add_argument("--metric", action="append", default=[])
    parser.add_argument("--plot", action="append", default=[])
    args = parser.parse_args()

    digest = digest_inputs(args.dep, args.value, args.name)
    seed = int(digest[:8], 16)
    document = json.dumps({"stage": args.name, "digest": digest, "values": args.value}, indent=1)
    for out in args.out:
        write(out, document + "\n")
    for spec in args.dir_out:
        directory, count = spec.rsplit(":", 1)
        for index in range(int(count)):
            # distinct parts: identical files would be one object in any content-addressed cache
            part = json.dumps({"stage": args.name, "digest": digest, "part": index}, indent=1)
            write(os.path.join(directory, f"part_{index:03d}.json"), part + "\n")
    for metric in args.metric:
        write(metric, json.dumps({"score": (seed % 1000) / 1000, "n": seed % 97}) + "\n")
    for plot in args.plot:
        rows = "".join(f"{step},{(seed >> step) % 100}\n" for step in range(10))
        write(plot, "step,value\n" + rows)


if __name__ == "__main__":
    main()
