#!/usr/bin/env python3
"""Each tool's --help names every option its parser accepts.

The options come from the parser's source, read three ways:
  - comparisons in a hand-written loop: `a == "--json"`,
    `a.starts_with("--vfio-mode=")`, `value("--status-dev")`,
    `strcmp(argv[i], "--writes")`;
  - rows of an option table: `{"file-prefix", 0, ...` (EAL, testpmd), the
    short letter too when it has one;
  - argparse: `add_argument("--json", ...` (Python tools).
Then the tool runs with --help (or the given arguments) and every option must
appear in what it prints, as a whole word (`--stats` is not found in
`--stats-period`). Exit 1 naming each missing option; also 1 when the source
yields no option at all, so a parser this script cannot read fails instead of
passing empty.

usage: help_test.py --tool EXE [--help-args ARGS] SOURCE...
"""
import argparse
import re
import subprocess
import sys

COMPARE = re.compile(
    r'(?:==\s*|starts_with\(\s*|value\(\s*|strcmp\([^,()]+,\s*)"(-{1,2}[A-Za-z][\w-]*)=?"')
TABLE_ROW = re.compile(r'^\s*\{"([a-z][\w-]*)?",\s*(?:\'(.)\'|0)\s*,', re.M)
ARGPARSE = re.compile(r'add_argument\(\s*((?:"-[^"]+"\s*,\s*)+)')


def options_in(text):
    found = set(COMPARE.findall(text))
    for long_name, short in TABLE_ROW.findall(text):
        if long_name:
            found.add("--" + long_name)
        if short:
            found.add("-" + short)
    for group in ARGPARSE.findall(text):
        found.update(re.findall(r'"(-[^"]+)"', group))
    return found


def listed(option, help_text):
    return re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", help_text) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, nargs="+",
                    help="the command that prints the help (program and leading arguments)")
    ap.add_argument("--help-args", default="--help",
                    help="what to pass for the help text, space-separated (default --help)")
    ap.add_argument("sources", nargs="+")
    a = ap.parse_args()

    wanted = set()
    for path in a.sources:
        with open(path, encoding="utf-8") as f:
            wanted |= options_in(f.read())
    if not wanted:
        print(f"no options found in {' '.join(a.sources)}: the parser has a shape "
              "this test does not read", file=sys.stderr)
        return 1

    cmd = a.tool + a.help_args.split()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr}", file=sys.stderr)
        return 1
    missing = sorted(o for o in wanted if not listed(o, r.stdout))
    print(f"{' '.join(cmd)}: {len(wanted)} options in the parser: {' '.join(sorted(wanted))}")
    if missing:
        print(f"missing from the help: {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
