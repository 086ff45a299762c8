"""The function sections of an lld link map (-Map), for the start-up order scripts.

An lld map lists, per line, VMA LMA Size Align and then an output section (least
indented), an input section `file:(.text.NAME)`, or a symbol (demangled, so unusable for the
ordering file); a Rust input section carries the mangled name. A C archive member (libc.a
in a static link) has one .text (or .text.avx, ...) section for all its functions: its name
is the first symbol line after it (C names are not mangled, so that line is the symbol).
"""
import re

# Section-name prefixes LLVM/lld put before a function's name (`.text.unlikely._ZN...`).
PREFIXES = ("unlikely.", "hot.", "startup.", "exit.", "split.")
C_SECTION = re.compile(r"\.a\(([^)]*)\.o\):\(\.text(\.[a-z0-9_.]+)?\)$")
RUST_SECTION = re.compile(r":\(\.text\.(.+)\)$")
C_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def text_sections(map_path):
    """(address, object stem or None, symbol name) of every function section of .text, in
    map order. The stem is a C archive member's name up to its first `-`
    (memmove-avx512-unaligned-erms.o -> memmove): glibc's CPU variants of one function."""
    out = []
    in_text = False
    pending = None  # (address, stem) of a C section waiting for its first symbol line
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
            if ":(" not in rest and C_SYMBOL.fullmatch(rest):
                out.append((pending[0], pending[1], rest))
            pending = None
        m = C_SECTION.search(rest)
        if m:
            pending = (int(f[0], 16), m.group(1).split("-")[0])
            continue
        m = RUST_SECTION.search(rest)
        if m:
            name = m.group(1)
            for p in PREFIXES:
                if name.startswith(p):
                    name = name[len(p):]
            out.append((int(f[0], 16), None, name))
    return out
