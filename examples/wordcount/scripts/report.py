"""Summarise every counts-*.json in a directory."""
import json
import pathlib
import sys

source, target = pathlib.Path(sys.argv[1]), sys.argv[2]
summary = {}
for path in sorted(source.glob("counts-*.json")):
    summary[path.stem] = sum(json.loads(path.read_text(encoding="utf-8")).values())
with open(target, "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1, sort_keys=True)
