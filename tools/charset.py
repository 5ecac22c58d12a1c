"""Bytes → text for fetched pages whose declared charset may be missing or wrong.

Order: byte-order mark; valid UTF-8 (mislabelled UTF-8 is the common web error, and other
encodings' non-ASCII text is almost never valid UTF-8); the declared charset (HTTP header, then
<meta>), with the WHATWG rule that latin-1 labels mean windows-1252; statistical detection;
last, UTF-8 with replacement characters. Nothing is ever dropped silently.
"""

from __future__ import annotations

import codecs
import re

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
# WHATWG Encoding Standard: these labels decode as windows-1252.
_AS_CP1252 = {"latin_1", "iso8859-1", "ascii", "cp1252"}
# The WHATWG Encoding Standard's legacy encodings, by Python codec name: what real pages are written in.
_WEB_ENCODINGS = [
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874",
    "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8", "iso8859_10",
    "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "koi8_r", "koi8_u", "cp866", "mac_roman",
    "mac_cyrillic", "gb18030", "big5", "euc_jp", "iso2022_jp", "shift_jis", "euc_kr", "utf_16",
]  # fmt: skip


def meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii").lower() if match else None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return "cp1252" if name in _AS_CP1252 else name


def decode_body(body: bytes, declared: str | None = None, html: bool = True) -> tuple[str, str]:
    """Returns (text, name of the encoding used)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, errors="replace"), name
    try:
        # Not final: a body cut at the byte cap may end inside a character; that tail is dropped.
        return codecs.getincrementaldecoder("utf-8")().decode(body, final=False), "utf-8"
    except UnicodeDecodeError:
        pass
    for label in (declared, meta_charset(body) if html else None):
        codec = _codec(label)
        if codec and codec != "utf-8":
            try:
                return body.decode(codec), codec
            except UnicodeDecodeError:
                continue
    if codec := detect(body):
        return body.decode(codec, errors="replace"), codec
    return body.decode("utf-8", errors="replace"), "utf-8 (with replacements)"


def detect(body: bytes) -> str | None:
    """Statistical guess among the encodings web pages use; ties go to windows-1252, the web's default."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(body[:200_000], cp_isolation=_WEB_ENCODINGS))
    if not matches:
        return None
    best = matches[0]
    tied = [m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    return _codec("cp1252" if "cp1252" in tied else best.encoding)
