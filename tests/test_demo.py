"""``bitwitness demo`` runs the whole job end to end; its outputs are checked independently."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import CliResult, require_tool, run_bitwitness

from bitwitness.sample import description


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    folder = tmp_path_factory.mktemp("demo") / "run"
    result = run_bitwitness("demo", folder)
    return folder, result


@pytest.mark.slow
def test_demo_runs_end_to_end(demo: tuple[Path, CliResult]) -> None:
    folder, result = demo
    assert result.exit_code == 0, result.stderr
    sample = description()
    image = folder / "case" / "evidence" / "disk01" / "disk01.E01"
    assert image.is_file()
    # the acquisition log's media hashes are the sample's, measured by coreutils at build time
    log = json.loads(image.with_suffix(".json").read_text())
    assert log["media"]["hashes"]["md5"] == sample.md5
    assert log["media"]["hashes"]["sha256"] == sample.sha256
    # the exported file is byte-identical to what the sample's build recorded
    exported = [p for p in (folder / "case" / "exports" / "disk01").rglob("*")
                if p.is_file() and not p.name.startswith("manifest")]
    assert len(exported) == 1
    recorded = {f.path.rsplit("/", 1)[-1]: f.sha256 for f in sample.files}
    digest = hashlib.sha256(exported[0].read_bytes()).hexdigest()
    assert recorded[exported[0].name] == digest
    reports = sorted(p.suffix for p in (folder / "case" / "reports").iterdir())
    assert reports == [".html", ".json", ".pdf"]
    custody = [json.loads(line) for line in
               (folder / "case" / "custody.jsonl").read_text().splitlines()]
    actions = [e["action"] for e in custody]
    for action in ("case-created", "seized", "acquire", "verify", "export", "report"):
        assert action in actions


@pytest.mark.slow
def test_demo_image_passes_ewfverify(demo: tuple[Path, CliResult]) -> None:
    require_tool("ewfverify")
    folder, _ = demo
    image = folder / "case" / "evidence" / "disk01" / "disk01.E01"
    out = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(image)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_demo_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("not a demo")
    r = run_bitwitness("demo", tmp_path, "--overwrite")
    assert r.exit_code == 2
    assert "already exists" in r.stderr
    assert (tmp_path / "precious.txt").read_text() == "not a demo"
    assert "Traceback" not in r.stderr


def test_demo_default_folder_is_never_reused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Running the README's demo command twice works and leaves the first run as it was."""
    from bitwitness.cli.commands.demo import _free_default

    monkeypatch.chdir(tmp_path)
    assert _free_default() == Path("bitwitness-demo")
    (tmp_path / "bitwitness-demo").mkdir()
    assert _free_default() == Path("bitwitness-demo")  # empty: usable
    (tmp_path / "bitwitness-demo" / "x").write_text("earlier run")
    (tmp_path / "bitwitness-demo-2").write_text("a file in the way")
    assert _free_default() == Path("bitwitness-demo-3")
