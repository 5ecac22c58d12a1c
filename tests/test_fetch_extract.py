"""Extraction and decoding pieces on their own: charset decisions, the fallback extractor, bounded decompression."""

from __future__ import annotations

import codecs
import zlib

import pytest
from deepsearch.tools.charset import decode_body
from deepsearch.tools.extract import extract_document, extract_html_fallback
from deepsearch.tools.http_fetch import FetchError, _BoundedDecoder, parse_content_type
from deepsearch.tools.ttl_cache import TTLCache

TEXT = "Grüße aus Köln — “Straße” über 5 € für Kaffee und Brötchen am Rheinufer, jeden Morgen."


@pytest.mark.parametrize(
    ("body", "declared", "charset"),
    [
        (codecs.BOM_UTF8 + TEXT.encode(), "iso-8859-1", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), None, "utf-16-le"),
        (TEXT.encode(), "windows-1252", "utf-8"),  # valid UTF-8 wins over a wrong label
        (TEXT.encode("cp1252"), "iso-8859-1", "cp1252"),  # latin-1 labels mean windows-1252 (WHATWG)
        (TEXT.encode("cp1252"), "utf-8", None),  # wrong label: detected (cp1250 and cp1252 agree on this text)
        (TEXT.encode("cp1252"), "no-such-charset", None),
    ],
)
def test_charset_decisions(body, declared, charset):
    text, used = decode_body(body, declared)
    assert text.lstrip("\ufeff") == TEXT
    assert used == charset or charset is None


def test_utf8_cut_inside_a_character_stays_utf8():
    body = TEXT.encode()[: TEXT.encode().index("ü".encode()) + 1]  # half of ü
    text, used = decode_body(body, None)
    assert used == "utf-8" and text == TEXT[: TEXT.index("ü")]


def test_meta_charset_is_used_when_the_header_has_none():
    body = '<html><head><meta charset="koi8-r"></head><body>Привет, мир</body></html>'.encode("koi8-r")
    assert decode_body(body, None) == (body.decode("koi8-r"), "koi8-r")


def test_fallback_extractor_drops_chrome_and_marks_structure():
    html = """<html><head><title> Pier  4 </title><script>var x = 1;</script><style>p{}</style></head>
    <body><header>Site name</header><nav>Home | News</nav>
    <h2>Tides</h2><p>High   water at 06:12.</p><ul><li>Low water 12:30</li><li>High water 18:40</li></ul>
    <aside>Advert</aside><footer>Contact</footer></body></html>"""
    doc = extract_html_fallback(html, "markdown")
    assert doc.title == "Pier 4" and doc.extractor == "fallback"
    assert doc.text == "## Tides\n\nHigh water at 06:12.\n\n- Low water 12:30\n\n- High water 18:40"
    assert extract_html_fallback(html, "text").text.startswith("Tides\n\nHigh water")
    assert extract_html_fallback("", "text").text == ""


def test_extract_document_plain_text_and_empty_html():
    assert extract_document(b"  notes\n", "text", None, "http://x/", "text").text == "notes"
    empty = extract_document(b"<html><body></body></html>", "html", None, "http://x/", "markdown")
    assert empty.text == "" and empty.extractor == "fallback"


def test_bounded_decoder_never_inflates_past_the_limit():
    bomb = zlib.compress(b"\0" * 50_000_000)  # ~50 KB in, 50 MB out
    decoder = _BoundedDecoder("deflate")
    assert len(decoder.feed(bomb, 4096)) == 4096
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = raw_deflate.compress(b"hello " * 10) + raw_deflate.flush()
    assert _BoundedDecoder("deflate").feed(data, 1000) == b"hello " * 10  # servers that send raw deflate
    with pytest.raises(FetchError, match="unsupported content-encoding 'br'"):
        _BoundedDecoder("br")
    with pytest.raises(FetchError, match="corrupt gzip body"):
        _BoundedDecoder("gzip").feed(b"definitely not gzip", 100)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/html; charset=ISO-8859-1", ("text/html", "iso-8859-1")),
        ('text/html; charset="utf-8"', ("text/html", "utf-8")),
        ("Application/XHTML+XML", ("application/xhtml+xml", None)),
        ("", ("", None)),
    ],
)
def test_parse_content_type(header, expected):
    assert parse_content_type(header) == expected


def test_ttl_cache_expires_and_zero_ttl_disables(tmp_path):
    now = [1000.0]
    cache = TTLCache(tmp_path / "c.sqlite", "ns", ttl_s=60, clock=lambda: now[0])
    cache.put_sync("k", "v")
    assert cache.get_sync("k") == "v"
    assert TTLCache(tmp_path / "c.sqlite", "other", ttl_s=60).get_sync("k") is None  # namespaces are separate
    now[0] += 61
    assert cache.get_sync("k") is None
    off = TTLCache(tmp_path / "d.sqlite", "ns", ttl_s=0)
    off.put_sync("k", "v")
    assert off.get_sync("k") is None and not (tmp_path / "d.sqlite").exists()
