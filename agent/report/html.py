"""The report as one self-contained HTML page: the Markdown rendered by markdown-it (raw HTML in any text is
escaped, never passed through: a source cannot inject markup), citations linked to their source entries."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from .markdown import SOURCES_HEADING

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
          "blockquote{color:#555;border-left:3px solid #ccc;margin:.3rem 0;padding-left:.8rem}"
          "li:target{background:#fff6d5}a{text-decoration:none}")  # fmt: skip


_MARKS = re.compile(r"(?<= )((?:\[\d+\])+)(?=\s|$)", re.MULTILINE)  # " [1][3]" after a sentence of the report


def _linked(markdown_text: str) -> str:
    """The sections' citation marks as links to their entries in the sources list."""
    body, sep, sources = markdown_text.partition(SOURCES_HEADING)

    def link(m: re.Match) -> str:
        return "".join(f"[\\[{n}\\]](#source-{n})" for n in re.findall(r"\d+", m.group(1)))

    return _MARKS.sub(link, body) + sep + sources


def render_html(markdown_text: str, title: str) -> str:
    body = MarkdownIt("commonmark", {"html": False}).render(_linked(markdown_text))
    # The sources list is the last ordered list: give its items the anchors the citations link to.
    head, sep, tail = body.rpartition("<h2>Sources</h2>")
    if sep:
        counter = iter(range(1, 10**6))
        tail = re.sub(r"<li>", lambda _: f'<li id="source-{next(counter)}">', tail)
        body = head + sep + tail
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")
