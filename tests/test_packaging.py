"""The repository folders install as deepsearch.* (plain and editable installs), never as top-level modules."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {
    "agent": "deepsearch.agent",
    "tools": "deepsearch.tools",
    "prompts": "deepsearch.prompts",
    "traces": "deepsearch.traces",
}


def _declared_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_declared():
    found = set()
    for folder, dotted in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((dotted, *rel)))
    assert found == _declared_packages()


def test_plain_install_has_namespaced_layout(tmp_path):
    target = tmp_path / "site"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert not (target / "deepsearch" / "__init__.py").exists()  # implicit namespace package
    for folder in MAPPED:
        assert (target / "deepsearch" / folder / "__init__.py").is_file()
        assert not (target / folder).exists(), f"{folder} installed as a top-level module"
    assert (target / "deepsearch" / "prompts" / "closed_book.md").is_file()
    code = "import deepsearch.agent.cli, deepsearch.prompts as p; print(p.load_prompt('closed_book').version)"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_editable_install_resolves_to_the_repository():
    import deepsearch.agent
    import deepsearch.prompts

    assert Path(deepsearch.agent.__file__).resolve().parent == ROOT / "agent"
    assert Path(deepsearch.prompts.__file__).resolve().parent == ROOT / "prompts"
