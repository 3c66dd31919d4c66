"""Lower-case a text, keep letters only, one word per line."""
import os
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    words = "".join(c if c.isalpha() else " " for c in f.read().lower()).split()
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
with open(target, "w", encoding="utf-8") as f:
    f.write("\n".join(words) + "\n")
