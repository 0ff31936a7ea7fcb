"""Shared by the benchmark scripts: write one section of BENCHMARKS.md.

Each script owns the text between `<!-- NAME:start -->` and
`<!-- NAME:end -->`; a section not there yet is appended.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_section(name, section):
    """Replace (or append) the section `name`; `section` includes its markers."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    open(path, "w").write(text)
    print(section)
