"""Sum the counts of every counts-LANG.json given into one summary."""
import json
import pathlib
import sys

target, sources = sys.argv[1], sys.argv[2:]
summary = {
    pathlib.Path(path).stem.removeprefix("counts-"): sum(json.loads(pathlib.Path(path).read_text(encoding="utf-8")).values())
    for path in sources
}
with open(target, "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1, sort_keys=True)
