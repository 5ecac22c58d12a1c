"""Page bytes → main text and metadata. Runs inside an extraction worker process (see worker_pool.py).

HTML goes through trafilatura (main content, markdown or plain text, title/author/date); when
trafilatura finds nothing (short pages, link hubs) a plain lxml pass keeps the visible text.
Plain text passes through; PDF is read with pypdf when the `pdf` extra is installed.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Literal

from pydantic import BaseModel

from .charset import decode_body

PageKind = Literal["html", "text", "pdf"]
TextFormat = Literal["markdown", "text"]
Extractor = Literal["trafilatura", "fallback", "plain", "pdf"]

_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form", "iframe")
_BLOCK_TAGS = ("p", "div", "section", "article", "main", "li", "tr", "pre", "blockquote", "dd", "dt", "table", "br")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_SHORT_CHARS = 250  # trafilatura's own MIN_EXTRACTED_SIZE
_FALLBACK_GAIN = 3
# Bump when the same bytes would extract differently (the rules in this file), so cached pages are redone.
EXTRACTION_RULES = 1


class ExtractedDoc(BaseModel):
    text: str
    title: str = ""
    author: str = ""
    date: str = ""
    sitename: str = ""
    description: str = ""
    charset: str = ""
    extractor: Extractor


def extract_document(
    body: bytes, kind: PageKind, declared_charset: str | None, url: str, fmt: TextFormat, use_trafilatura: bool = True
) -> ExtractedDoc:
    if kind == "pdf":
        return extract_pdf(body)
    text, charset = decode_body(body, declared_charset, html=kind == "html")
    if kind == "text":
        return ExtractedDoc(text=text.strip(), charset=charset, extractor="plain")
    doc = extract_html_trafilatura(text, url, fmt) if use_trafilatura else None
    if doc is None or len(doc.text) < _SHORT_CHARS:
        # Nothing, or suspiciously little (e.g. only a footer when the posts sit in a comments block):
        # keep the plain visible text instead when it is several times longer.
        fallback = extract_html_fallback(text, fmt)
        if doc is None or len(fallback.text) > _FALLBACK_GAIN * len(doc.text):
            doc = fallback.model_copy(update={"title": doc.title if doc and doc.title else fallback.title})
    doc.charset = charset
    return doc


def extract_html_trafilatura(html: str, url: str, fmt: TextFormat) -> ExtractedDoc | None:
    import trafilatura

    document = trafilatura.extract_with_metadata(
        html,
        url=url,
        output_format="markdown" if fmt == "markdown" else "txt",
        include_comments=False,
        include_tables=True,
        include_links=False,
        # Dates from metadata and markup only: htmldate's extensive search scans all the text, costs about a
        # quarter of the extraction time and mistakes copyright years for publication dates.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if document is None or not document.text:
        return None
    return ExtractedDoc(
        # With metadata on, trafilatura prefixes a YAML header; the metadata is returned as fields instead.
        text=_FRONT_MATTER.sub("", document.text, count=1).strip(),
        title=document.title or "",
        author=document.author or "",
        date=document.date or "",
        sitename=document.sitename or "",
        description=document.description or "",
        extractor="trafilatura",
    )


def extract_html_fallback(html: str, fmt: TextFormat) -> ExtractedDoc:
    """All visible text minus page chrome, one block per paragraph; headings marked in markdown."""
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except Exception:  # noqa: BLE001 - lxml raises several types for empty or broken documents
        return ExtractedDoc(text="", extractor="fallback")
    title = " ".join(root.findtext(".//title", default="").split())
    for element in list(root.iter(*_DROP_TAGS)):
        element.drop_tree()
    for element in root.iter(*_HEADINGS):
        if fmt == "markdown":
            element.text = "#" * int(element.tag[1]) + " " + (element.text or "").lstrip()
        element.tail = "\n\n" + (element.tail or "")
    if fmt == "markdown":
        for element in root.iter("li"):
            element.text = "- " + (element.text or "").lstrip()
    for element in root.iter(*_BLOCK_TAGS):
        element.tail = "\n\n" + (element.tail or "")
    body = root.find("body")
    raw = (body if body is not None else root).text_content()
    lines = (" ".join(line.split()) for line in raw.splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return ExtractedDoc(text=text, title=title, extractor="fallback")


def extract_pdf(body: bytes) -> ExtractedDoc:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(body))
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    meta = reader.metadata
    return ExtractedDoc(
        text="\n\n".join(p for p in pages if p),
        title=(meta.title or "") if meta else "",
        author=(meta.author or "") if meta else "",
        extractor="pdf",
    )


@functools.cache
def extractor_version() -> str:
    """What turns bytes into text here: these rules and the libraries' versions (part of the page cache key)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    return f"rules-{EXTRACTION_RULES}/trafilatura-{of('trafilatura')}/lxml-{of('lxml')}/pypdf-{of('pypdf')}"


def pdf_supported() -> bool:
    from importlib.util import find_spec

    return find_spec("pypdf") is not None
