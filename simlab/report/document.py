"""A report as plain data (sections of prose, tables and PNG figures) and its two renderings, HTML and Markdown.

The HTML is self-contained: figures are base64 data URIs and a
Content-Security-Policy forbids loading anything else, so a figure that
slipped in by reference would visibly fail to load rather than quietly work
on the author's machine only.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    name: str  # file stem for the Markdown copy, e.g. "timeline"
    caption: str
    png: bytes


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    text: bool = False  # prose cells: left-aligned instead of right-aligned like numbers


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
       max-width: 1240px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #dde2e8; padding-bottom: 0.2em; }
.subtitle { color: #5b6673; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 0.6em 0; }
th, td { padding: 4px 7px; border-bottom: 1px solid #e4e8ee; text-align: right; white-space: nowrap; }
th { background: #f3f5f8; font-weight: 600; white-space: normal; vertical-align: bottom; }
th:first-child, td:first-child, table.text th, table.text td { text-align: left; }
table.text td { white-space: normal; }
.scroll { overflow-x: auto; }
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
        out.append(f"<h2>{esc(section.heading)}</h2>")
        out.extend(f"<p>{esc(p)}</p>" for p in section.paragraphs)
        if section.table is not None:
            t = section.table
            css = ' class="text"' if t.text else ""
            out.append(f'<div class="scroll"><table{css}><thead><tr>')
            out.append("".join(f"<th>{esc(c)}</th>" for c in t.columns) + "</tr></thead><tbody>")
            for row in t.rows:
                out.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
            out.append("</tbody></table></div>")
            if t.note:
                out.append(f'<p class="note">{esc(t.note)}</p>')
        for fig in section.figures:
            out.append(
                f'<figure><img src="{_data_uri(fig.png)}" alt="{esc(fig.caption)}" data-figure="{esc(fig.name)}">'
                f"<figcaption>{esc(fig.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


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
            out += [f"![{fig.caption}]({fig.name}.png)", "", f"_{fig.caption}_", ""]
    return "\n".join(out).rstrip() + "\n"
