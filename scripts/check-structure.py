#!/usr/bin/env python3
"""The structural rules of ARCHITECTURE.md, checked (CI runs this through
scripts/test.sh):

  1. no function in src/ longer than 120 lines outside tests;
  2. no dependency cycle between the top-level modules of src/;
  3. store/ and cdn/ are leaves: no `crate::` path outside their own folder;
  4. every module file opens with a `//!` line saying why it exists.

A module's dependencies are the `crate::<module>` paths in its code (test
modules and comments excluded). Exit 1 naming every violation.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_FN_LINES = 120
LEAVES = ("store", "cdn")
# Compiled only for tests (declared under #[cfg(test)] in lib.rs).
TEST_ONLY = {"rewrite_fuzz.rs", "reader_fuzz.rs"}


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    return rel[:-3].split(os.sep)[0]


def code_of(text):
    """The text without test modules and comments."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n(pub(\(crate\))? )?mod \w+", text, re.M)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"//[^\n]*", "", text)
    return text


def long_functions(path, text):
    lines = text.split("\n")
    out = []
    i = 0
    fn = re.compile(r"\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)")
    while i < len(lines):
        m = fn.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            for ch in lines[j]:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
            if started and depth == 0:
                break
            if not started and lines[j].rstrip().endswith(";"):
                break
            j += 1
        n = j - i + 1
        if started and n > MAX_FN_LINES:
            out.append(f"{path}:{i + 1}: fn {m.group(6)} is {n} lines (max {MAX_FN_LINES})")
        i = j + 1 if started else i + 1
    return out


def cycles(edges):
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return comps


def main():
    problems = []
    edges = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            shown = os.path.relpath(path, os.path.join(ROOT, ".."))
            text = open(path, encoding="utf-8").read()
            if not text.lstrip().startswith("//!"):
                problems.append(f"{shown}:1: no `//!` line saying why the module exists")
            if f in TEST_ONLY:
                continue
            code = code_of(text)
            problems += long_functions(shown, code)
            m = module_of(path)
            uses = set(re.findall(r"\bcrate::(\w+)", code)) - {m}
            edges.setdefault(m, set()).update(uses)
            if m in LEAVES and uses:
                problems.append(
                    f"{shown}: {m}/ must be a leaf but uses crate::{{{', '.join(sorted(uses))}}}"
                )
    for c in cycles(edges):
        problems.append(f"src/: dependency cycle between modules {' -> '.join(c)}")
    for p in problems:
        print(p)
    if problems:
        print(f"check-structure: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-structure: ok ({len(edges)} modules, no cycles, leaves {', '.join(LEAVES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
