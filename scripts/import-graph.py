#!/usr/bin/env python3
"""File-level import graph of src/: every `crate::…` and `super::…` path outside comments is
resolved to the file that defines its longest module prefix. Prints import circles (strongly
connected components of more than one file) and files over the line limit; exits 1 on either."""
import os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
LIMIT = 800

def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel

def file_of(mod):
    """The file of module path `mod` (a list), or None."""
    base = os.path.join(ROOT, *mod) if mod else None
    if not mod:
        return os.path.join(ROOT, "lib.rs")
    for cand in (base + ".rs", os.path.join(base, "mod.rs")):
        if os.path.exists(cand):
            return cand
    return None

def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return text

def paths(text):
    """Every path starting with crate:: or super:: (use trees expanded one level)."""
    out = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        tree = m.group(1).replace(" ", "").replace("\n", "")
        out += expand(tree)
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        out.append(m.group(1))
    return [p for p in out if p.startswith(("crate", "super"))]

def expand(tree):
    m = re.match(r"^(.*?)::\{(.*)\}$", tree)
    if not m:
        return [tree.split(" as ")[0]]
    prefix, inner = m.groups()
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur); cur = ""; continue
        depth += ch == "{"; depth -= ch == "}"; cur += ch
    parts.append(cur)
    res = []
    for p in parts:
        if not p:
            continue
        for e in expand(p):
            res.append(prefix if e == "self" else prefix + "::" + e)
    return res

def target(src, path):
    mod = module_of(src)
    is_mod_file = os.path.basename(src) in ("mod.rs", "lib.rs")
    segs = path.split("::")
    if segs[0] == "crate":
        cur, segs = [], segs[1:]
    else:
        cur = list(mod)
        while segs and segs[0] == "super":
            cur = cur[:-1]
            segs = segs[1:]
        if not is_mod_file and path.startswith("super") and False:
            pass
    best = file_of(cur)
    for s in segs:
        f = file_of(cur + [s])
        if f is None:
            break
        cur = cur + [s]
        best = f
    return best

files = []
for d, _, fs in os.walk(ROOT):
    files += [os.path.join(d, f) for f in fs if f.endswith(".rs")]
edges = {f: set() for f in files}
for f in files:
    text = open(f).read()
    # tests modules inside a file may use super::* of the same file
    for p in paths(strip(text)):
        t = target(f, p)
        if t and os.path.abspath(t) != os.path.abspath(f) and not t.endswith("lib.rs"):
            edges[f].add(os.path.abspath(t))
edges = {os.path.abspath(k): v for k, v in edges.items()}

# Tarjan
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in edges:
    if v not in index:
        strong(v)
bad = False
rel = lambda p: os.path.relpath(p, os.path.join(ROOT, ".."))
for c in sccs:
    bad = True
    print("circle:", ", ".join(sorted(rel(x) for x in c)))
    for a in sorted(c):
        for b in sorted(edges[a] & set(c)):
            print(f"    {rel(a)} -> {rel(b)}")
for f in sorted(edges):
    n = sum(1 for _ in open(f))
    if n > LIMIT:
        bad = True
        print(f"over {LIMIT} lines: {rel(f)} ({n})")
if not bad:
    print(f"{len(files)} files, no import circle, none over {LIMIT} lines")
sys.exit(1 if bad else 0)
