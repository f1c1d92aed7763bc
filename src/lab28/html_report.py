"""A self-contained HTML page from a Markdown report: images inlined as data URIs, no network needed to view it.

Handles the Markdown lab28 writes (headings, paragraphs, pipe tables, images, fenced code, <details>), not
Markdown in general.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from lab28.io_utils import atomic_write_text

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:0.5em 0}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:0.8em}code{background:#f6f6f6}"""

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str, base: Path) -> str:
    def image(m: re.Match) -> str:
        path = base / m.group(2)
        if not path.is_file():
            return f"<em>[missing figure {html.escape(m.group(2))}]</em>"
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{html.escape(m.group(1))}" src="data:image/png;base64,{data}">'

    out = html.escape(text, quote=False)
    out = _IMG.sub(image, out)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


def markdown_to_html(markdown: str, base: Path, title: str) -> str:
    body: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{_inline(c, base)}</th>" for c in head) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{_inline(c, base)}</td>" for c in r) + "</tr>" for r in rest) + "</table>")
            continue
        m = re.match(r"(#+) (.*)", line)
        if m:
            level = len(m.group(1))
            body.append(f"<h{level}>{_inline(m.group(2), base)}</h{level}>")
        elif line.startswith(("<details", "</details", "<summary")):
            body.append(line)  # our own markup, passed through
        elif line.strip():
            body.append(f"<p>{_inline(line, base)}</p>")
        i += 1
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_html_report(markdown_path: str | Path) -> Path:
    markdown_path = Path(markdown_path)
    out = markdown_path.with_suffix(".html")
    page = markdown_to_html(markdown_path.read_text(), markdown_path.parent, markdown_path.parent.name)
    atomic_write_text(out, page)
    return out
