"""Lower-case a text and keep only letters and spaces."""
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    text = f.read().lower()
words = "".join(c if c.isalpha() else " " for c in text).split()
with open(target, "w", encoding="utf-8") as f:
    f.write("\n".join(words) + "\n")
