"""A report as plain data (sections of prose, tables and PNG figures) and its two renderings, HTML and Markdown.

The HTML is self-contained: figures are base64 data URIs and a
Content-Security-Policy forbids loading anything else, so a figure that
slipped in by reference would visibly fail to load rather than quietly work
on the author's machine only.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    name: str  # file stem for the Markdown copy, e.g. "timeline"
    caption: str
    png: bytes
    alt: str = ""  # what the figure shows, for a reader who cannot see it (default: the caption)

    @property
    def alt_text(self) -> str:
        return self.alt or self.caption


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    text: bool = False  # prose cells: left-aligned instead of right-aligned like numbers
    keys: int = 1  # leading columns that name a row, repeated when the HTML splits a wide table


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    table: Table | None = None
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section]

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b;
       max-width: 1240px; margin: 2em auto; padding: 0 1.5em; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #dde2e8; padding-bottom: 0.2em; }
.subtitle { color: #5b6673; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 0.6em 0; }
th, td { padding: 4px 7px; border-bottom: 1px solid #e4e8ee; text-align: right; overflow-wrap: normal; }
td span { white-space: nowrap; }
th { background: #f3f5f8; font-weight: 600; white-space: normal; vertical-align: bottom; }
th:first-child, td:first-child, table.text th, table.text td { text-align: left; }
table.text td { white-space: normal; }
.scroll { overflow-x: auto; }
section#decision { background: #f5f8fc; border-left: 4px solid #2b6cb0; padding: 0.1em 1em 0.4em; margin-top: 1.2em; }
section#decision h2 { margin-top: 0.6em; }
.note { color: #5b6673; font-size: 13px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eef1f4; }
figcaption { color: #5b6673; font-size: 13px; margin-top: 0.3em; }
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: Report) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
        f'<p class="subtitle">{esc(report.subtitle)}</p>',
    ]
    for section in report.sections:
        out.append(f'<section id="{anchor(section.heading)}"><h2>{esc(section.heading)}</h2>')
        out.extend(f"<p>{esc(p)}</p>" for p in section.paragraphs)
        if section.table is not None:
            t = section.table
            css = ' class="text"' if t.text else ""
            for part in split_columns(t):
                out.append(f'<div class="scroll"><table{css}><thead><tr>')
                out.append("".join(f"<th>{esc(c)}</th>" for c in part.columns) + "</tr></thead><tbody>")
                for row in part.rows:
                    out.append("<tr>" + "".join(f"<td>{_html_cell(v, t.text)}</td>" for v in row) + "</tr>")
                out.append("</tbody></table></div>")
            if t.note:
                out.append(f'<p class="note">{esc(t.note)}</p>')
        for fig in section.figures:
            out.append(
                f'<figure><img src="{_data_uri(fig.png)}" alt="{esc(fig.alt_text)}" data-figure="{esc(fig.name)}">'
                f"<figcaption>{esc(fig.caption)}</figcaption></figure>"
            )
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def anchor(heading: str) -> str:
    """'Why not the others' -> 'why-not-the-others': the id a section's heading carries in the HTML."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


COUNTS = re.compile(r"[^\s,]+ \d+(?:, [^\s,]+ \d+)*")
"""A cell that counts things ('failure 29, crash 3'): it wraps between its items, never inside one."""


def _parts(value: str) -> tuple[str, list[str]]:
    """What a numeric cell may wrap between, and how they are joined: '97%' and '[91–99%]', or a count's items."""
    return (", ", value.split(", ")) if COUNTS.fullmatch(value) else (" ", value.split(" "))


def _html_cell(value: str, text: bool) -> str:
    """A numeric cell may wrap only between its parts, never inside one."""
    if text:
        return html.escape(value)
    joiner, parts = _parts(value)
    return joiner.join(f"<span>{html.escape(part)}</span>" for part in parts)


CHAR_PX, CELL_PX, PAGE_PX = 7.4, 16, 1080
"""Rough widths at the report's 13px table font, and the width a table may take on a 1280 px window."""


def _column_px(t: Table, j: int) -> float:
    """The narrowest a column can get: its longest header word or its longest unbreakable cell part."""
    words = t.columns[j].split()
    parts = [p for row in t.rows for p in (_parts(row[j])[1] if not t.text else row[j].split()[:1])]
    longest = max([len(w) for w in words + parts] or [1])
    return longest * CHAR_PX + CELL_PX


def split_columns(t: Table) -> list[Table]:
    """A table too wide for the page as several, each with the row-naming columns first; one when it fits."""
    if t.text or len(t.columns) <= t.keys + 1:
        return [t]
    widths = [_column_px(t, j) for j in range(len(t.columns))]
    keys = list(range(t.keys))
    base = sum(widths[j] for j in keys)
    groups: list[list[int]] = [[]]
    used = base
    for j in range(t.keys, len(t.columns)):
        if groups[-1] and used + widths[j] > PAGE_PX:
            groups.append([])
            used = base
        groups[-1].append(j)
        used += widths[j]
    if len(groups) == 1:
        return [t]
    return [Table([t.columns[j] for j in keys + g], [[row[j] for j in keys + g] for row in t.rows], "", t.text, t.keys)
            for g in groups]


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """Markdown with figures referenced as <name>.png files written next to it."""
    out = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    for section in report.sections:
        out += [f"## {section.heading}", ""]
        for p in section.paragraphs:
            out += [p, ""]
        if section.table is not None:
            t = section.table
            out.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
            out.append("|" + "|".join([":---"] + [":---" if t.text else "---:"] * (len(t.columns) - 1)) + "|")
            out += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in t.rows]
            out.append("")
            if t.note:
                out += [f"_{t.note}_", ""]
        for fig in section.figures:
            out += [f"![{_md_cell(fig.alt_text)}]({fig.name}.png)", "", f"_{fig.caption}_", ""]
    return "\n".join(out).rstrip() + "\n"
