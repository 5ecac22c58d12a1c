"""The documentation: the site builds strictly, the README stays a front door, the config reference is current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from deepsearch.agent.config import Settings, env_name, leaf_keys
from deepsearch.agent.config_reference import COMMAND, render

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_LIMIT = 15_000

# [text](target) and [text]: target, outside code; good enough for the hand-written Markdown here.
_INLINE_LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def _links(markdown: str) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    return _INLINE_LINK.findall(text) + _IMAGE_LINK.findall(text) + _REF_LINK.findall(text)


def _relative_targets(markdown: str) -> list[str]:
    targets = []
    for link in _links(markdown):
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or link.startswith("#"):
            continue
        targets.append(unquote(parts.path))
    return targets


def _nav_pages(nav: object) -> list[str]:
    """Every page file named in mkdocs.yml's nav (nested sections included)."""
    if isinstance(nav, str):
        return [] if urlsplit(nav).scheme else [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _mkdocs_config() -> dict:
    yaml = pytest.importorskip("yaml")
    # mkdocs.yml uses no custom tags; a plain safe load reads it.
    return yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))


def test_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing anchor or a page left out of the nav is an error."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()


def test_readme_is_a_front_door():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it under {README_LIMIT} and move details to docs/"


def test_readme_relative_links_resolve():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = _relative_targets(readme)
    assert targets, "the README should link to the docs pages"
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_readme_links_every_nav_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = {Path(t).resolve() for t in _relative_targets(readme)}
    unlinked = [p for p in _nav_pages(_mkdocs_config()["nav"]) if (DOCS / p).resolve() not in linked]
    assert not unlinked, f"pages in the nav that the README's 'where to go next' does not link: {unlinked}"


def test_every_nav_page_exists():
    config = _mkdocs_config()
    assert config["docs_dir"] == "docs"
    pages = _nav_pages(config["nav"])
    assert "index.md" in pages and "configuration.md" in pages
    missing = [p for p in pages if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml nav names pages that do not exist: {missing}"
    assert len(pages) == len(set(pages)), "a page is listed twice in the nav"


def test_config_reference_is_current():
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), f"docs/configuration.md is stale: run `{COMMAND}` and commit it"


def test_config_reference_covers_every_setting():
    page = render()
    for key in leaf_keys(Settings):
        assert f"`{key}`" in page, key
        assert f"`{env_name(key)}`" in page, key
    assert page.startswith(f"<!-- Generated from the settings models: `{COMMAND}`")


def test_config_reference_has_no_machine_paths():
    page = render()
    assert str(Path.home()) not in page
    assert "`<data dir>/traces`" in page and "`<cache dir>`" in page
    assert "| ≥ 512 |" in page  # llm.n_ctx: constraints are shown
