#!/usr/bin/env python3
"""Symbols of a callgrind trace's executed code, for lld's --symbol-ordering-file.

usage: symbols-at.py LINK.map CALLGRIND.out ob=PATH

Reads the executed instruction addresses of object PATH from a callgrind output written with
--dump-instr=yes --compress-pos=no --compress-strings=no, finds the symbol each falls in from
an lld link map (-Map) of the same (non-PIE) link, and prints each symbol once, in the order
first seen. Used by link/record-startup-order.sh.
"""
import bisect
import re
import sys


# Section-name prefixes LLVM/lld put before a function's name (`.text.unlikely._ZN...`).
PREFIXES = ("unlikely.", "hot.", "startup.", "exit.", "split.")


def symbols(map_path):
    """(address, mangled name) of every function section of .text, sorted by address.

    An lld map lists, per line, VMA LMA Size Align and then an output section (least
    indented), an input section `file:(.text.NAME)`, or a symbol (demangled, so unusable
    for the ordering file); the input section carries the mangled name.
    """
    out = []
    in_text = False
    # A C archive member (libc.a in a static link) has one .text (or .text.avx, ...) section
    # for all its functions, not one per function: its name comes from the first symbol line
    # after it (C names are not mangled, so the demangled map line is the symbol itself).
    c_section_at = None
    for line in open(map_path, encoding="utf-8", errors="replace"):
        f = line.split(None, 4)
        if len(f) < 5 or not re.fullmatch(r"[0-9a-f]+", f[0]):
            continue
        rest = f[4].rstrip("\n")
        if rest.startswith(".") and ":(" not in rest:
            in_text = rest == ".text"
            c_section_at = None
            continue
        if not in_text:
            continue
        if c_section_at is not None:
            if ":(" not in rest and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", rest.strip()):
                out.append((c_section_at, rest.strip()))
            c_section_at = None
        if re.search(r"\.a\([^)]*\.o\):\(\.text(\.[a-z0-9_.]+)?\)$", rest):
            c_section_at = int(f[0], 16)
            continue
        m = re.search(r":\(\.text\.(.+)\)$", rest)
        if not m:
            continue
        name = m.group(1)
        for p in PREFIXES:
            if name.startswith(p):
                name = name[len(p):]
        out.append((int(f[0], 16), name))
    out.sort()
    return out


def main():
    map_path, cg_path, ob = sys.argv[1:4]
    syms = symbols(map_path)
    addrs = [a for a, _ in syms]
    seen = set()
    cur = False
    for line in open(cg_path, encoding="utf-8", errors="replace"):
        if line.startswith("ob="):
            cur = line.rstrip("\n") == ob
            continue
        if not cur or not line.startswith("0x"):
            continue
        addr = int(line.split()[0], 16)
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0:
            continue
        name = syms[i][1]
        if name not in seen:
            seen.add(name)
            print(name)


if __name__ == "__main__":
    main()
