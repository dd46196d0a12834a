"""A report as plain blocks (paragraphs, tables, figures), rendered twice: markdown beside its PNGs, and one
self-contained HTML file with the PNGs inlined, so the file can be mailed or attached to a ticket alone."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    header: list[str]
    rows: list[list[Any]]


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Figure] = field(default_factory=list)
    ran: bool = True

    @classmethod
    def not_run(cls, title: str, why: str) -> Section:
        """A section whose stage has not run says so, and how to run it."""
        return cls(title, [f"Not run: {why}."], ran=False)


def cell(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def to_markdown(title: str, sections: list[Section], out_dir: Path) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Table):
                lines.append("| " + " | ".join(b.header) + " |")
                lines.append("|" + "---|" * len(b.header))
                lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b.rows]
            elif isinstance(b, Figure):
                lines.append(f"![{b.caption}]({os.path.relpath(b.path, out_dir)})")
            else:
                lines.append(b)
            lines.append("")
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left}th{background:#f2f2f2}td.num{text-align:right}img{max-width:100%;
border:1px solid #eee}.notrun{color:#888;font-style:italic}nav a{margin-right:1em}figcaption{color:#555;
font-size:.85em}"""


def to_html(title: str, sections: list[Section]) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_CSS}</style>"
             f"</head><body><h1>{esc(title)}</h1><nav>"]
    parts += [f"<a href='#s{i}'>{esc(s.title)}</a>" for i, s in enumerate(sections)]
    parts.append("</nav>")
    for i, s in enumerate(sections):
        parts.append(f"<section id='s{i}'><h2>{esc(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Table):
                head = "".join(f"<th>{esc(h)}</th>" for h in b.header)
                body = "".join("<tr>" + "".join(f"<td{_num(c)}>{esc(cell(c))}</td>" for c in row) + "</tr>"
                               for row in b.rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif isinstance(b, Figure):
                data = base64.b64encode(b.path.read_bytes()).decode()
                parts.append(f"<figure><img class='plot' alt='{esc(b.caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{esc(b.caption)}</figcaption></figure>")
            else:
                parts.append(f"<p class='{'notrun' if not s.ran else ''}'>{esc(b)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _num(x: Any) -> str:
    """Numbers right-aligned, so a column's magnitudes line up."""
    text = cell(x).rstrip("%x")
    try:
        float(text)
    except ValueError:
        return ""
    return " class='num'"
