"""Count words of at least MIN_LEN letters; keep the top N (params.yaml)."""
import collections
import json
import sys

source, min_len, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open("params.yaml", encoding="utf-8") as f:
    top = int(next(line.split(":")[1] for line in f if "top:" in line))
with open(source, encoding="utf-8") as f:
    words = [w for w in f.read().split() if len(w) >= min_len]
counts = collections.Counter(words).most_common(top)
with open(target, "w", encoding="utf-8") as f:
    json.dump(dict(counts), f, indent=1, ensure_ascii=False)
