"""A self-contained HTML page from a Markdown report: images inlined as data URIs, no network needed to view it.

Handles the Markdown lab28 writes (headings, paragraphs, pipe tables, images, links, lists, block quotes, fenced
code, <details>), not Markdown in general. Layout for reading: every heading has a stable id (GitHub's anchor for
the same text, so a report.md's links work in both), a list of in-page links is a table of contents, a `## Summary`
section up to the next heading or the contents is a box, consecutive figures share rows (two on a wide screen, one
on a narrow one; a very wide figure takes its row), a block quote is a banner.
"""

from __future__ import annotations

import base64
import html
import re
import struct
from pathlib import Path

from lab28.io_utils import atomic_write_text

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.3em}h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}td:first-child,th:first-child{text-align:left}
.table{overflow-x:auto;margin:1em 0}
blockquote{margin:1em 0;padding:0.8em 1em;background:#fff4d6;border-left:6px solid #e0a100;border-radius:4px}
.summary{background:#eef5ff;border:1px solid #c9dcf5;border-radius:6px;padding:0.2em 1em}
nav.toc{background:#f7f7f7;border-radius:6px;padding:0.5em 1em;margin:1em 0}nav.toc::before{content:"Contents";font-weight:bold}
nav.toc ul{columns:2;column-gap:2em;margin:0.3em 0;padding-left:1.2em}@media(max-width:800px){nav.toc ul{columns:1}}
.figures{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));grid-auto-flow:row dense;gap:1em;margin:1em 0;
align-items:start}
@media(max-width:800px){.figures{grid-template-columns:minmax(0,1fr)}}
figure{margin:0}figure.wide{grid-column:1/-1}figcaption{font-size:0.8em;color:#666;text-align:center}
img{max-width:100%;height:auto;display:block;margin:0 auto}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:0.8em}code{background:#f6f6f6}"""

# A figure at least this many times wider than tall spans a row of the figure grid (the 3-panel curves do); the
# grid packs densely, so a figure fills a half row that a wide one left empty instead of leaving a hole.
WIDE_ASPECT = 2.5

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_HEADING = re.compile(r"(#+) (.*)")


def anchor(text: str) -> str:
    """GitHub's anchor for a heading's text: lower case, Markdown marks and punctuation dropped, spaces to hyphens."""
    plain = _LINK.sub(r"\1", text).replace("`", "").replace("**", "")
    return re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")


def heading_anchors(lines: list[str]) -> list[tuple[int, str, str]]:
    """(level, text, id) of every heading outside fenced code, ids made unique as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    found = []
    fenced = False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = _HEADING.fullmatch(line)
        if m and not fenced:
            base = anchor(m.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.append((len(m.group(1)), m.group(2), base if count == 0 else f"{base}-{count}"))
    return found


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, None for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


def _figure(m: re.Match, base: Path) -> str:
    """One cell of a figure row: the image and its alt text as the caption."""
    data = _read_figure(base / m.group(2))
    size = png_size(data) if data is not None else None
    wide = size is not None and size[1] > 0 and size[0] / size[1] >= WIDE_ASPECT
    return (f'<figure{" class=wide" if wide else ""}>{_image_tag(m, data)}'
            f"<figcaption>{html.escape(m.group(1))}</figcaption></figure>")


def _read_figure(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _image(m: re.Match, base: Path) -> str:
    return _image_tag(m, _read_figure(base / m.group(2)))


def _image_tag(m: re.Match, data: bytes | None) -> str:
    """The image inlined as a data URI (one self-contained page), or a note where the file is missing."""
    if data is None:
        return f"<em>[missing figure {html.escape(m.group(2))}]</em>"
    return f'<img alt="{html.escape(m.group(1))}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _inline(text: str, base: Path) -> str:
    out = html.escape(text, quote=False)
    out = _IMG.sub(lambda m: _image(m, base), out)
    out = _LINK.sub(_link, out)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


# Link targets a report may hold: a page anchor, a relative path, or a web address; anything else (javascript:,
# data:) is shown as text, since parts of a report come from files and databases other people can write.
_SAFE_TARGET = re.compile(r"^(#[\w\-]*|https?://\S+|(?![a-zA-Z][\w+.\-]*:)[^\s]+)$")


def _link(m: re.Match) -> str:
    text, target = m.group(1), m.group(2)
    if not _SAFE_TARGET.match(target):
        return text
    return f'<a href="{target.replace(chr(34), "&quot;")}">{text}</a>'


def _table(rows: list[list[str]], base: Path) -> str:
    head, *rest = rows
    return ('<div class="table"><table><tr>' + "".join(f"<th>{_inline(c, base)}</th>" for c in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{_inline(c, base)}</td>" for c in r) + "</tr>" for r in rest)
            + "</table></div>")


def _is_toc(items: list[str]) -> bool:
    """A list whose items are all in-page links is a table of contents."""
    return all(re.fullmatch(r"\[[^\]]+\]\(#[^)]*\)", item) for item in items)


def _list(items: list[str], base: Path) -> str:
    ul = "<ul>" + "".join(f"<li>{_inline(item, base)}</li>" for item in items) + "</ul>"
    return f'<nav class="toc">{ul}</nav>' if _is_toc(items) else ul


def _block(lines: list[str], i: int, test) -> tuple[list[str], int]:
    """The run of lines from i on that pass `test`, and the index after it."""
    j = i
    while j < len(lines) and test(lines[j]):
        j += 1
    return lines[i:j], j


def markdown_to_html(markdown: str, base: Path, title: str) -> str:
    lines = markdown.splitlines()
    ids = iter(heading_anchors(lines))
    body: list[str] = []
    summary_open = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            code, i = _block(lines, i + 1, lambda s: not s.startswith("```"))
            body.append("<pre>" + html.escape("\n".join(code)) + "</pre>")
            i += 1
            continue
        if line.startswith("|"):
            block, i = _block(lines, i, lambda s: s.startswith("|"))
            rows = [[c.strip() for c in row.strip().strip("|").split("|")] for row in block]
            body.append(_table([r for r in rows if not all(set(c) <= set("-: ") for c in r)], base))
            continue
        if _IMG.fullmatch(line.strip()):
            block, i = _block(lines, i, lambda s: bool(_IMG.fullmatch(s.strip())))
            body.append('<div class="figures">' + "".join(_figure(_IMG.fullmatch(s.strip()), base) for s in block)
                        + "</div>")
            continue
        if line.startswith("- "):
            block, i = _block(lines, i, lambda s: s.startswith("- "))
            items = [s[2:] for s in block]
            if summary_open and _is_toc(items):  # the summary box ends where the contents start
                body.append("</div>")
                summary_open = False
            body.append(_list(items, base))
            continue
        if line.startswith("> "):
            block, i = _block(lines, i, lambda s: s.startswith(">"))
            body.append("<blockquote>" + " ".join(_inline(s[1:].strip(), base) for s in block) + "</blockquote>")
            continue
        m = _HEADING.fullmatch(line)
        if m:
            level, text, anchor_id = next(ids)
            if summary_open:  # the summary box ends where the next heading starts
                body.append("</div>")
                summary_open = False
            body.append(f'<h{level} id="{html.escape(anchor_id)}">{_inline(text, base)}</h{level}>')
            if level == 2 and anchor_id == "summary":
                body.append('<div class="summary">')
                summary_open = True
        elif line.startswith(("<details", "</details", "<summary")):
            body.append(line)  # our own markup, passed through
        elif line.strip():
            body.append(f"<p>{_inline(line, base)}</p>")
        i += 1
    if summary_open:
        body.append("</div>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_html_report(markdown_path: str | Path) -> Path:
    markdown_path = Path(markdown_path)
    out = markdown_path.with_suffix(".html")
    markdown = markdown_path.read_text()
    title = next((text for level, text, _ in heading_anchors(markdown.splitlines()) if level == 1),
                 markdown_path.parent.name)  # the browser tab says what the page is, not only its folder
    page = markdown_to_html(markdown, markdown_path.parent, title)
    atomic_write_text(out, page)
    return out
