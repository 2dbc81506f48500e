#!/usr/bin/env python3
"""Size limits of the source (ARCHITECTURE.md): no file under src/ over 400 lines, no function over 60 lines
unless the line before its `fn` carries a `// size:` comment saying why. Exits 1 and lists every offender.

Functions are found by brace matching from each `fn` line (strings and comments are skipped well enough for
this codebase: braces inside string literals are ignored by tracking "..." and r#"..."# roughly)."""
import pathlib
import re
import sys

MAX_FILE, MAX_FN = 400, 60
FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)')


def strip(line):
    """The line without string literals, char literals and `//` comments."""
    line = re.sub(r'r#*"[^"]*"#*', '""', line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "' '", line)
    return line.split('//', 1)[0]


def functions(lines):
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            s = strip(lines[j])
            if not started and ';' in s and '{' not in s:
                break  # a declaration without a body
            depth += s.count('{') - s.count('}')
            started = started or '{' in s
            if started and depth <= 0:
                break
            j += 1
        if started:
            yield m.group(6), i, j - i + 1
        i += 1


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    bad = []
    for path in sorted((root / 'src').rglob('*.rs')):
        rel = path.relative_to(root)
        lines = path.read_text().split('\n')
        if len(lines) > MAX_FILE:
            bad.append(f'{rel}: {len(lines)} lines (limit {MAX_FILE})')
        for name, start, length in functions(lines):
            reason = start > 0 and '// size:' in lines[start - 1]
            if length > MAX_FN and not reason:
                bad.append(f'{rel}:{start + 1}: fn {name} is {length} lines (limit {MAX_FN})')
    for b in bad:
        print(b)
    print(f'check-size: {len(bad)} over the limits', file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
