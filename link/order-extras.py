#!/usr/bin/env python3
"""Functions to pack with the traced start-up code that the trace cannot show.

usage: order-extras.py LINK.map ORDER.txt EXTRA.txt

Prints, one per line and not already in ORDER.txt: every variant of a recorded libc function
(the other `<name>-<isa>.o` members of the same archive: glibc picks one by CPU at start-up
and valgrind's emulated CPU takes another), and every .text section whose (mangled, or C) name
contains one of EXTRA.txt's substrings. Used by link/record-startup-order.sh.
"""
import sys

from linkmap import text_sections


def main():
    map_path, order_path, extra_path = sys.argv[1:4]
    order = {l.strip() for l in open(order_path) if l.strip()}
    patterns = []
    for line in open(extra_path):
        line = line.split("#", 1)[0].strip()
        if line:
            patterns.append(line)
    secs = [(stem, name) for _, stem, name in text_sections(map_path)]
    stems = {stem for stem, name in secs if stem is not None and name in order}
    seen = set(order)
    for stem, name in secs:
        hit = (stem is not None and stem in stems) or any(p in name for p in patterns)
        if hit and name not in seen:
            seen.add(name)
            print(name)


if __name__ == "__main__":
    main()
