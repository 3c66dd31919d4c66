"""Back ends: turn a plan into text (report, sh, ninja) or into work (runner)."""
