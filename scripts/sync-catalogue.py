#!/usr/bin/env python3
"""Puts what the alert catalogue says (collector/src/catalogue) in the files
that repeat it: rules/brokerwatch.alerts.yml, the README's two alert tables
and the example config's rule list. The collector's tests fail until they
agree; run this after changing the catalogue."""
import subprocess
from pathlib import Path

root = Path(__file__).resolve().parent.parent
run = lambda *args: subprocess.run(
    ["cargo", "run", "-q", "-p", "brokerwatch-collector", "--", *args],
    cwd=root, check=True, capture_output=True, text=True).stdout
(root / "rules/brokerwatch.alerts.yml").write_text(run("rules"))
agents, cluster, example = run("rules", "--docs").split("\n\n", 2)


def splice(text, start, block, indent=""):
    """Replaces the table or comment block starting at `start` with `block`."""
    at = text.index(start)
    end = text.index("\n\n", at)
    lines = "\n".join(indent + l for l in block.strip("\n").split("\n"))
    return text[:at] + lines + text[end:]


readme = (root / "README.md").read_text()
first = readme.index("| alert | subject | fires when (default) | for |")
line_start = readme.rindex("\n", 0, first) + 1
indent = readme[line_start:first]
readme = splice(readme, indent + "| alert | subject", agents, indent)
second = readme.index("| alert | subject", readme.index("\n\n", line_start))
readme = readme[:second] + splice(readme[second:], "| alert | subject", cluster)
(root / "README.md").write_text(readme)
config = root / "collector/brokerwatch-collector.example.toml"
text = config.read_text()
at = text.index("# Per rule: enabled, for")
end = at
while text.startswith("#", end):
    end = text.index("\n", end) + 1
config.write_text(text[:at] + example.strip("\n") + "\n" + text[end:])
