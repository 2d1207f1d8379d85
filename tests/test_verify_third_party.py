"""Every image in ../shared/fixtures/third-party gets the verdict its manifest implies.

* ``stored_hashes_valid: true`` -> VERIFIED (exit 0), with the stored hashes as references;
* ``false`` (dissect_ewf.E01) -> MISMATCH (exit 1), naming expected and computed MD5;
* ``null`` -> UNVERIFIED (exit 1) with the computed hashes shown, and VERIFIED once a sidecar
  with the manifest's hashes sits next to a copy. The .vhd/.vmdk hashes in the manifest are of
  the container file, not of the media: a sidecar naming the container is checked against the
  file, and the media hash is shown as what it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import THIRD_PARTY, run_bitwitness, snapshot
from test_verify_logs import tool_hash

from bitwitness.verify import Match, Verdict, verify_image


def _names() -> list[str]:
    import json

    manifest = THIRD_PARTY / "manifest.json"
    return sorted(json.loads(manifest.read_text())) if manifest.is_file() else []


CONTAINERS = {".vhd", ".vmdk"}


@pytest.mark.parametrize("name", _names())
def test_manifest_verdict(third_party: Path, manifest: dict[str, Any], name: str) -> None:
    entry = manifest[name]
    files = [third_party / f for f in entry["files"]]
    before = snapshot(files)
    r = run_bitwitness("verify", files[0], "--json")
    doc = r.json()["images"][0]
    valid = entry["stored_hashes_valid"]
    if valid is True:
        assert doc["verdict"] == "VERIFIED", doc["problems"]
        assert r.exit_code == 0
        stored = {k.lower(): v for k, v in entry["stored_hashes"].items()}
        compared = {c["reference"]["algorithm"]: c["reference"]["value"]
                    for c in doc["comparisons"]}
        assert compared == stored
        assert doc["computed"]["md5"] == entry["md5"]
    elif valid is False:
        assert doc["verdict"] == "MISMATCH"
        assert r.exit_code == 1
        bad = [c for c in doc["comparisons"] if c["match"] == "mismatch"]
        assert bad[0]["reference"]["value"] == entry["stored_hashes"]["MD5"]
        assert bad[0]["computed"] == entry["md5"]
    else:
        assert doc["verdict"] == "UNVERIFIED"
        assert r.exit_code == 1
        if Path(name).suffix not in CONTAINERS:
            assert doc["computed"]["md5"] == entry["md5"]
            assert doc["computed"]["sha256"] == entry["sha256"]
            assert doc["media_size"] == entry["media_size"]
        else:  # the manifest hashes the container file; the media is something else
            assert doc["format"] != "raw"
            assert doc["computed"]["md5"] != entry["md5"]
    assert [Path(f).name for f in doc["files"]] == entry["files"]
    assert snapshot(files) == before


def _multi_file() -> list[str]:
    import json

    manifest = THIRD_PARTY / "manifest.json"
    if not manifest.is_file():
        return []
    return sorted(n for n, e in json.loads(manifest.read_text()).items() if len(e["files"]) > 1)


@pytest.mark.parametrize("name", _multi_file())
def test_any_piece_names_the_set(third_party: Path, manifest: dict[str, Any], name: str) -> None:
    results = [verify_image(third_party / f) for f in manifest[name]["files"]]
    assert len({r.verdict for r in results}) == 1
    assert {r.computed["md5"] for r in results} == {manifest[name]["md5"]}
    assert all([f.name for f in r.files] == manifest[name]["files"] for r in results)


@pytest.mark.parametrize("name", [n for n in _names() if n.endswith((".raw", ".dd", ".000",
                                                                    ".vhd", ".vmdk"))])
def test_sidecar_with_manifest_hashes(tmp_path: Path, third_party: Path,
                                      manifest: dict[str, Any], name: str) -> None:
    """A copy with an md5sum/sha1sum sidecar carrying the manifest's hashes verifies."""
    entry = manifest[name]
    for f in entry["files"]:
        shutil.copyfile(third_party / f, tmp_path / f)
    first = tmp_path / entry["files"][0]
    container = first.suffix in CONTAINERS
    # For raw media the sidecar line names the whole media (the set's stem); for containers
    # it names the container file, which is what the manifest hashed (md5sum agrees).
    if container:
        assert tool_hash("md5sum", first) == [entry["md5"]]
    target = first.name if container or len(entry["files"]) == 1 else first.stem
    (tmp_path / f"{first.name}.md5").write_text(f"{entry['md5']}  {target}\n")
    (tmp_path / f"{first.name}.sha1").write_text(f"{entry['sha1']}  {target}\n")
    result = verify_image(first)
    assert result.verdict is Verdict.VERIFIED, result.problems
    assert {c.reference.algorithm for c in result.comparisons} == {"md5", "sha1"}
    assert all(c.match is Match.MATCH for c in result.comparisons)
    expected_scope = f"file {first.name}" if len(entry["files"]) == 1 else "media"
    assert {c.reference.scope for c in result.comparisons} == {expected_scope}
    if container:
        assert all(c.reference.file == first for c in result.comparisons)
