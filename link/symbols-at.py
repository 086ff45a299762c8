#!/usr/bin/env python3
"""Symbols of a callgrind trace's executed code, for lld's --symbol-ordering-file.

usage: symbols-at.py LINK.map CALLGRIND.out ob=PATH

Reads the executed instruction addresses of object PATH from a callgrind output written with
--dump-instr=yes --compress-pos=no --compress-strings=no, finds the symbol each falls in from
an lld link map (-Map) of the same (non-PIE) link, and prints each symbol once, in the order
first seen. Used by link/record-startup-order.sh.
"""
import bisect
import sys


from linkmap import text_sections


def symbols(map_path):
    """(address, mangled name) of every function section of .text, sorted by address."""
    return sorted((addr, name) for addr, _, name in text_sections(map_path))


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
