"""The TOP most common words of at least MIN_LEN letters, as JSON."""
import collections
import json
import os
import sys

source, min_len, top, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(source, encoding="utf-8") as f:
    words = [w for w in f.read().split() if len(w) >= min_len]
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
with open(target, "w", encoding="utf-8") as f:
    json.dump(dict(collections.Counter(words).most_common(top)), f, indent=1, ensure_ascii=False)
