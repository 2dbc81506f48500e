#!/usr/bin/env python3
"""Module dependencies of src/ (ARCHITECTURE.md): prints the top-level arrows, fails (exit 1) on an import cycle
between sibling modules at any level, or on an arrow the layer rules forbid.

How: every file is a module path (src/platform/emitter/body.rs = platform::emitter::body). Each `crate::…`,
`super::…` and `self::…` path in it (in `use` lines and in code) is resolved to the longest module path that
exists. An arrow A → B is recorded between the two sibling modules under their common ancestor (so
platform::worker → platform::emitter::shared counts as worker → emitter inside platform). Items a module uses
from one of its own ancestors (a parent's `mod.rs`) are not arrows. Then every group of siblings must be
acyclic, and the top level must follow LAYERS."""
import pathlib
import re
import sys

# Top-level module → the top-level modules it may use. Anything not listed may use only what is listed here
# for it; the crate root (lib.rs, main.rs) may use everything.
LAYERS = {
    'contract': set(),
    'settings': set(),
    'schema': set(),
    'telemetry': {'contract'},
    'shutdown': set(),
    'retry': set(),
    'http': set(),
    'kafka': {'contract', 'retry', 'http'},
    'actions': {'contract', 'kafka', 'schema'},
    'triggers': {'contract', 'kafka', 'schema'},
    'diag': {'contract'},
    'platform': {'contract', 'settings', 'retry', 'http'},
    'local': {'contract', 'platform'},
    'verify': {'kafka', 'settings', 'contract'},
    'service': {'kafka', 'verify', 'settings', 'platform', 'contract', 'retry', 'schema'},
}

PATH = re.compile(r'\b(crate|super|self)((?:::\w+)+)')
USE_GROUP = re.compile(r'\buse\s+(crate|super|self)((?:::\w+)*)::\{([^;]*)\};', re.S)


def module_of(src, path):
    parts = list(path.relative_to(src).with_suffix('').parts)
    if parts[-1] in ('mod', 'lib', 'main'):
        parts = parts[:-1]
    return tuple(parts)


def paths_in(text):
    """Every crate/super/self path in `text`, with `use a::{b, c::d}` groups expanded one level."""
    for m in USE_GROUP.finditer(text):
        base = m.group(1) + m.group(2)
        for item in re.split(r',', re.sub(r'\{[^}]*\}', '', m.group(3))):
            item = item.strip().split(' as ')[0].strip()
            if item and item != 'self':
                yield base + '::' + item
    for m in PATH.finditer(text):
        yield m.group(1) + m.group(2)


def resolve(mod, raw, modules):
    head, *rest = raw.split('::')
    if head == 'crate':
        base = ()
    elif head == 'self':
        base = mod
    else:
        base = mod
        while rest and rest[0] == 'super':
            rest = rest[1:]
            base = base[:-1]
        base = base[:-1]
    target = base
    for part in rest:
        if target + (part,) in modules:
            target = target + (part,)
        else:
            break
    return target


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    src = root / 'src'
    files = {module_of(src, p): p for p in src.rglob('*.rs')}
    modules = set(files)
    edges = {}
    for mod, path in files.items():
        text = re.sub(r'//.*', '', path.read_text())
        # Test modules may reach anywhere for fixtures; they are not part of the layering.
        text = text.split('#[cfg(test)]')[0]
        for raw in paths_in(text):
            target = resolve(mod, raw, modules)
            k = 0
            while k < min(len(mod), len(target)) and mod[k] == target[k]:
                k += 1
            if k == len(target) or k == len(mod):
                continue  # an ancestor's items, or a descendant of this module
            parent, a, b = mod[:k], mod[k], target[k]
            edges.setdefault(parent, {}).setdefault(a, set()).add(b)
    bad = []
    for parent, graph in sorted(edges.items()):
        bad += [f'cycle in {"::".join(parent) or "crate"}: {" -> ".join(c)}' for c in cycles(graph)]
    top = edges.get((), {})
    for a in sorted(top):
        allowed = LAYERS.get(a)
        print(f'{a} -> {", ".join(sorted(top[a])) or "-"}')
        if allowed is None:
            bad.append(f'{a}: not in LAYERS of scripts/check-layers.py')
            continue
        for b in sorted(top[a] - allowed):
            bad.append(f'forbidden arrow: {a} -> {b}')
    for b in bad:
        print(b)
    print(f'check-layers: {len(bad)} problems', file=sys.stderr)
    return 1 if bad else 0


def cycles(graph):
    """One representative cycle per strongly connected component with more than one node (or a self-loop)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


if __name__ == '__main__':
    sys.exit(main())
