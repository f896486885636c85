"""A small document model rendered twice: ``report.md`` (figures as relative links, for papers and
READMEs) and a self-contained ``report.html`` (figures embedded as base64 PNG, inline CSS, no script, no
network: it opens offline in a browser)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

Cell = str | tuple[str, str]  # text, or (text, link target relative to the report)


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]


@dataclass
class Figure:
    path: Path  # the PNG, inside the report directory
    caption: str


@dataclass
class Details:
    summary: str
    text: str  # preformatted (a YAML config)


@dataclass
class Document:
    """Blocks in order: headings (``("h1"|"h2"|"h3", text)``), paragraphs (``str``), tables, figures and
    collapsed preformatted details."""

    title: str
    blocks: list[object] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append((f"h{level}", text))


def _md_cell(cell: Cell) -> str:
    text, link = (cell, None) if isinstance(cell, str) else cell
    text = text.replace("|", "\\|")
    return f"[{text}]({link})" if link else text


def to_markdown(doc: Document, root: Path) -> str:
    """Markdown; figure links are relative to ``root`` (the report directory)."""
    out = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, tuple):
            out += ["#" * int(block[0][1]) + " " + block[1], ""]
        elif isinstance(block, str):
            out += [block, ""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(block.header) + " |")
            out.append("|" + "---|" * len(block.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, Figure):
            out += [
                f"![{block.path.stem}]({block.path.relative_to(root).as_posix()})",
                "",
                f"*{block.caption}*",
                "",
            ]
        elif isinstance(block, Details):
            out += [f"<details><summary>{html.escape(block.summary)}</summary>", "", "```yaml",
                    block.text.rstrip(), "```", "", "</details>", ""]  # fmt: skip
    return "\n".join(out)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; }
"""


def _html_cell(cell: Cell, tag: str) -> str:
    text, link = (cell, None) if isinstance(cell, str) else cell
    body = html.escape(text)
    if link:
        body = f'<a href="{html.escape(link, quote=True)}">{body}</a>'
    return f"<{tag}>{body}</{tag}>"


def to_html(doc: Document) -> str:
    """One HTML file: every figure read and embedded as ``data:image/png;base64``."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{html.escape(doc.title)}</h1>"]  # fmt: skip
    for block in doc.blocks:
        if isinstance(block, tuple):
            out.append(f"<{block[0]}>{html.escape(block[1])}</{block[0]}>")
        elif isinstance(block, str):
            out.append(f"<p>{html.escape(block)}</p>")
        elif isinstance(block, Table):
            out.append(
                "<table><thead><tr>" + "".join(_html_cell(h, "th") for h in block.header) + "</tr></thead>"
            )
            out += ["<tr>" + "".join(_html_cell(c, "td") for c in row) + "</tr>" for row in block.rows]
            out.append("</table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            caption = html.escape(block.caption)
            out.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip
        elif isinstance(block, Details):
            out.append(f"<details><summary>{html.escape(block.summary)}</summary>"
                       f"<pre>{html.escape(block.text)}</pre></details>")  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out) + "\n"
