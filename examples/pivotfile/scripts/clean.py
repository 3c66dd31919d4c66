"""Lower-case a text, keep letters only, one word per line."""
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    words = "".join(c if c.isalpha() else " " for c in f.read().lower()).split()
with open(target, "w", encoding="utf-8") as f:
    f.write("\n".join(words) + "\n")
