#!/usr/bin/env python3
"""Functions to pack with the traced start-up code that the trace cannot show.

usage: order-extras.py LINK.map ORDER.txt EXTRA.txt

Prints, one per line and not already in ORDER.txt: every variant of a recorded libc function
(the other `<name>-<isa>.o` members of the same archive: glibc picks one by CPU at start-up
and valgrind's emulated CPU takes another), and every .text section whose mangled name
contains one of EXTRA.txt's substrings. Used by link/record-startup-order.sh.
"""
import re
import sys

PREFIXES = ("unlikely.", "hot.", "startup.", "exit.", "split.")
C_SECTION = re.compile(r"\.a\(([^)]*)\.o\):\(\.text(\.[a-z0-9_.]+)?\)$")
RUST_SECTION = re.compile(r":\(\.text\.(.+)\)$")


def sections(map_path):
    """(object stem or None, symbol name) of every function section of .text, in map order."""
    out = []
    in_text = False
    pending = None
    for line in open(map_path, encoding="utf-8", errors="replace"):
        f = line.split(None, 4)
        if len(f) < 5 or not re.fullmatch(r"[0-9a-f]+", f[0]):
            continue
        rest = f[4].strip()
        if rest.startswith(".") and ":(" not in rest:
            in_text = rest == ".text"
            pending = None
            continue
        if not in_text:
            continue
        if pending is not None:
            if ":(" not in rest and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", rest):
                out.append((pending, rest))
            pending = None
        m = C_SECTION.search(rest)
        if m:
            # memmove-avx512-unaligned-erms -> memmove; strlen-evex -> strlen
            pending = m.group(1).split("-")[0]
            continue
        m = RUST_SECTION.search(rest)
        if m:
            name = m.group(1)
            for p in PREFIXES:
                if name.startswith(p):
                    name = name[len(p):]
            out.append((None, name))
    return out


def main():
    map_path, order_path, extra_path = sys.argv[1:4]
    order = {l.strip() for l in open(order_path) if l.strip()}
    patterns = []
    for line in open(extra_path):
        line = line.split("#", 1)[0].strip()
        if line:
            patterns.append(line)
    secs = sections(map_path)
    stems = {stem for stem, name in secs if stem is not None and name in order}
    seen = set(order)
    for stem, name in secs:
        hit = (stem is not None and stem in stems) or (
            stem is None and any(p in name for p in patterns)
        )
        if hit and name not in seen:
            seen.add(name)
            print(name)


if __name__ == "__main__":
    main()
