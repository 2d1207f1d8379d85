"""Sizes, hashing, the error boundary and packaging."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, run_bitwitness, run_subprocess

import bitwitness
from bitwitness.errors import UsageError
from bitwitness.hashing import MultiHasher, ThreadedHasher, parse_algorithms
from bitwitness.sizes import parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("512", 512), ("640MB", 640_000_000), ("1.4GiB", int(1.4 * 1024**3)), ("2G", 2 * 1024**3),
    ("1MiB", 1 << 20), ("10k", 10240), ("3 kB", 3000), ("0", 0), (4096, 4096),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "12XB", "-5", "1.2.3G"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_hashers_agree_with_hashlib() -> None:
    data = [bytes(range(256)) * 1000, b"x" * 12345, b""]
    whole = b"".join(data)
    expected = {n: hashlib.new(n, whole).hexdigest() for n in ("md5", "sha1", "sha256")}
    mh, th = MultiHasher(), ThreadedHasher()
    for d in data:
        mh.update(d)
        th.update(d)
    assert mh.hexdigests() == expected
    assert th.close() == expected
    assert th.bytes_hashed == len(whole)


def test_parse_algorithms() -> None:
    assert parse_algorithms("SHA256,md5") == ("md5", "sha256")
    assert parse_algorithms("sha-1") == ("sha1",)
    with pytest.raises(UsageError, match="crc32"):
        parse_algorithms("md5,crc32")


def test_version_and_help() -> None:
    r = run_bitwitness("--version")
    assert r.exit_code == 0
    assert bitwitness.__version__ in r.stdout
    r = run_bitwitness("--help")
    assert r.exit_code == 0
    assert "Exit codes" in r.stdout
    assert "formats" in r.stdout


def test_unknown_command_is_usage_error() -> None:
    r = run_bitwitness("no-such-command")
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr


def test_python_dash_m_runs() -> None:
    r = run_subprocess("--version")
    assert r.exit_code == 0, r.stderr
    assert "bitwitness" in r.stdout


def test_formats_json() -> None:
    r = run_bitwitness("formats", "--json")
    assert r.exit_code == 0
    assert "raw" in r.json()["formats"]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for name, folder in mapping.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            sub = ".".join(rel.parts)
            candidate = f"{name}.{sub}" if sub else name
            # folders mapped separately are found through their own mapping entry
            if not any(candidate.startswith(m + ".") or candidate == m
                       for m in mapping if m != name and m.startswith(name)):
                found.add(candidate)
    assert found <= listed, f"missing from pyproject packages: {sorted(found - listed)}"


def test_version_has_one_source() -> None:
    """The version is the constant in bitwitness/__init__.py; the build reads it from there."""
    from importlib import metadata

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "bitwitness.__version__"}
    # the installed metadata (what pip reports) agrees; a stale install after a bump fails here
    assert metadata.version("bitwitness") == bitwitness.__version__


def test_no_top_level_acquire_verify_report_installed() -> None:
    code = ("import importlib.util, sys; sys.path = [p for p in sys.path if p not in ('', '.')];"
            "print([n for n in ('acquire','verify','report') if importlib.util.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", check=True).stdout.strip()
    assert out == "[]"
    import bitwitness.acquire
    import bitwitness.report
    import bitwitness.verify

    assert Path(bitwitness.acquire.__file__).parent.name == "acquire"
    assert bitwitness.verify
    assert bitwitness.report


def test_the_core_imports_no_stage() -> None:
    """The layout's one rule of direction (docs/DESIGN.md, Layout): the stages use the core,
    the core (its CLI aside, which runs the stages) uses no stage."""
    import ast

    stages = tuple(f"bitwitness.{stage}" for stage in bitwitness.STAGES)
    offenders = []
    for path in sorted((REPO / "bitwitness").rglob("*.py")):
        if "cli" in path.relative_to(REPO / "bitwitness").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in names
                          if name.startswith(stages) and name.split(".")[1] in bitwitness.STAGES]
    assert offenders == []


def test_ci_runs_the_readme_test_command_and_the_static_checks() -> None:
    """CI runs the README's second command verbatim (a clean clone proves the README), then
    ruff and mypy (scripts/typecheck.sh: every package, the stages as installed)."""
    import re

    blocks = re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(), re.DOTALL)
    test_command = blocks[1].strip()
    assert "pytest" in test_command
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [line for line in lines if line and not line.startswith("#")]
    assert any(line.startswith(test_command) for line in commands)
    assert ".venv/bin/ruff check ." in commands
    assert "scripts/typecheck.sh" in commands
    script = (REPO / "scripts" / "typecheck.sh").read_text()
    assert f"for stage in {' '.join(bitwitness.STAGES)}; do" in script


def _layout_tree(document: Path) -> list[str]:
    """The ``text`` block under ``## Layout`` of a document, as its lines."""
    text = document.read_text(encoding="utf-8")
    section = text[text.index("\n## Layout\n"):]
    start = section.index("```text\n") + len("```text\n")
    return section[start : section.index("\n```", start)].splitlines()


def test_readme_and_design_draw_the_same_tree_as_the_checkout() -> None:
    """README.md and docs/DESIGN.md show one tree; each entry exists, and every folder git
    tracks down to the second level is drawn (a new part is added to both or the test fails)."""
    readme, design = _layout_tree(REPO / "README.md"), _layout_tree(REPO / "docs/DESIGN.md")
    assert readme == design
    drawn, parents = set(), [""]
    for line in readme:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        parents[depth + 1 :] = []
        path = parents[depth] + name
        assert (REPO / path).exists(), path
        assert path.endswith("/") == (REPO / path).is_dir(), path
        drawn.add(path.rstrip("/"))
        if path.endswith("/"):
            parents.append(path)
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                            check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked folders are unknown")
    folders = {"/".join(Path(f).parts[:depth]) for f in listed.stdout.splitlines()
               for depth in (1, 2) if len(Path(f).parts) > depth}
    assert folders - drawn == set()
