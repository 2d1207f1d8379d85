"""Volume Shadow Copies written by Windows (../shared/fixtures/volumes/plaso_vsstest.qcow2).

The QCOW2 is turned into a raw disk by ``qemu-img convert`` (the container is not what is tested
here). The independent reader is Debian's build of libyal's tools: ``vshadowinfo`` for the stores
and their creation times, ``vshadowmount`` (FUSE) to expose each store as a file, on which The
Sleuth Kit's ``fls``/``icat`` read the earlier NTFS state. Our ``partitions``, ``ls`` and ``cat``
must agree with them store by store.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SHARED, require_tool, snapshot
from test_browse_listing import as_fls, fls_lines

VOLUMES = SHARED / "fixtures" / "volumes"
VSS = VOLUMES / "plaso_vsstest.qcow2"


@pytest.fixture(scope="module")
def vss_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not VSS.is_file():
        pytest.skip("../shared/fixtures/volumes is absent (plain clone)")
    require_tool("qemu-img", "vshadowinfo", "vshadowmount", "fusermount", "fls", "icat")
    raw = tmp_path_factory.mktemp("vss") / "vsstest.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(VSS), str(raw)], check=True)
    return raw


@pytest.fixture(scope="module")
def stores(vss_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stores as files vss1, vss2... exposed by vshadowmount."""
    mount = tmp_path_factory.mktemp("vssmount")
    proc = subprocess.Popen(["vshadowmount", str(vss_raw), str(mount)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        if (mount / "vss1").exists():
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip(f"vshadowmount did not mount (no FUSE here?): {proc.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["fusermount", "-u", str(mount)], check=False)
        proc.wait(timeout=30)


def vshadowinfo(raw: Path) -> list[dict[str, str]]:
    out = subprocess.run(["vshadowinfo", str(raw)], capture_output=True, text=True,
                         check=True).stdout
    found: list[dict[str, str]] = []
    for line in out.splitlines():
        if re.match(r"^Store: \d+", line):
            found.append({})
        elif found and ":" in line:
            key, _, value = line.strip().partition(":")
            found[-1][key.strip()] = value.strip()
    return found


def parse_vshadow_time(text: str) -> datetime:
    """``Dec 03, 2013 06:35:09.736378700 UTC`` (to the microsecond)."""
    head, frac = text.removesuffix(" UTC").rsplit(".", 1)
    when = datetime.strptime(head, "%b %d, %Y %H:%M:%S").replace(tzinfo=UTC)
    return when.replace(microsecond=int(frac[:6]))


def test_partitions_lists_each_store_with_its_creation_time(vss_raw: Path, bw) -> None:
    before = snapshot([vss_raw])
    theirs = vshadowinfo(vss_raw)
    assert theirs, "vshadowinfo found no store"
    result = bw("partitions", "--json", vss_raw)
    assert result.exit_code == 0, result.stderr
    (row,) = result.json()["partitions"]
    assert row["path"] == "0"
    assert row["filesystem"] == "ntfs"
    ours = row["volumes"]
    assert [v["path"] for v in ours] == [f"0/vss{i}" for i in range(1, len(theirs) + 1)]
    for volume, store in zip(ours, theirs, strict=True):
        assert volume["kind"] == "vss"
        assert volume["identifier"] == store["Identifier"]
        created = datetime.fromisoformat(volume["created"].replace("Z", "+00:00"))
        assert created == parse_vshadow_time(store["Creation time"])
        assert volume["filesystem"] == "ntfs"
    text = bw("partitions", vss_raw)
    assert text.exit_code == 0
    assert "0/vss1" in text.stdout
    assert "created 2013-12-03T06:35:09" in text.stdout
    assert snapshot([vss_raw]) == before


@pytest.mark.parametrize("store", [1, 2])
def test_ls_of_a_store_matches_fls_on_the_store(vss_raw: Path, stores: Path, bw,
                                                 store: int) -> None:
    expected = fls_lines(stores / f"vss{store}")
    result = bw("ls", vss_raw, "-r", "--all", "--json", "-p", f"0/vss{store}")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["volume"] == f"0/vss{store}"
    assert doc["filesystem"] == "ntfs"
    assert Counter(as_fls(e) for e in doc["entries"]) == expected


def test_a_store_holds_an_earlier_state_and_cat_reads_it(vss_raw: Path, stores: Path,
                                                         bw) -> None:
    now = {e["path"] for e in bw("ls", vss_raw, "--json").json()["entries"]}
    then = bw("ls", vss_raw, "--json", "-p", "0/vss1").json()["entries"]
    earlier_only = [e for e in then if e["path"] not in now and e["kind"] == "file"]
    assert earlier_only, "the first store should hold a file the current volume no longer has"
    for entry in earlier_only:
        ours = bw("cat", vss_raw, entry["path"], "-p", "0/vss1")
        assert ours.exit_code == 0, ours.stderr
        theirs = subprocess.run(["icat", str(stores / "vss1"), entry["inode"]],
                                capture_output=True, check=True).stdout
        assert theirs
        assert ours.stdout == theirs.decode("utf-8", "replace")  # both decoded alike


def test_without_p_the_current_volume_is_chosen_and_unknown_paths_fail(vss_raw: Path,
                                                                      bw) -> None:
    assert bw("ls", vss_raw, "--json").json()["volume"] == "0"
    missing = bw("ls", vss_raw, "-p", "0/vss9")
    assert missing.exit_code == 2
    assert "0/vss9" in missing.stderr
    assert "0/vss1" in missing.stderr
    assert missing.stderr.count("\n") == 1


def test_timeline_across_stores_shows_each_files_history(vss_raw: Path, stores: Path,
                                                         bw) -> None:
    """Without -p the timeline holds the volume and every store, each store's paths prefixed
    p0-vssN-ntfs, each part equal to fls -m on that store."""
    result = bw("timeline", vss_raw)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    for store in (1, 2):
        prefix = f"p0-vss{store}-ntfs"
        theirs = subprocess.run(["fls", "-r", "-m", prefix, str(stores / f"vss{store}")],
                                capture_output=True, check=True).stdout.decode(
                                    "utf-8", "surrogateescape").splitlines()
        ours = [line for line in lines if line.split("|", 2)[1].startswith(prefix + "/")]
        assert Counter(ours) == Counter(theirs)
    current = subprocess.run(["fls", "-r", "-m", "p0-ntfs", str(vss_raw)], capture_output=True,
                             check=True).stdout.decode("utf-8", "surrogateescape").splitlines()
    assert Counter(line for line in lines if line.split("|", 2)[1].startswith("p0-ntfs/")) == \
        Counter(current)
    # syslog was compressed after the first store was taken: its history is in the timeline
    assert any("|p0-vss1-ntfs/syslog|" in line for line in lines)
    assert any("|p0-ntfs/syslog.gz|" in line for line in lines)


def test_export_from_a_store_hashes_what_icat_reads_there(vss_raw: Path, stores: Path, bw,
                                                          tmp_path: Path) -> None:
    import hashlib
    import json

    then = bw("ls", vss_raw, "--json", "-p", "0/vss1").json()["entries"]
    syslog = next(e for e in then if e["path"] == "/syslog")
    result = bw("export", vss_raw, "/syslog", "--to", tmp_path / "out", "-p", "0/vss1")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["volume"] == "0/vss1"
    assert manifest["key"] is None
    (row,) = manifest["files"]
    theirs = subprocess.run(["icat", str(stores / "vss1"), syslog["inode"]],
                            capture_output=True, check=True).stdout
    assert row["sha256"] == hashlib.sha256(theirs).hexdigest()
    assert (tmp_path / "out" / "syslog").read_bytes() == theirs


def test_the_qcow2_itself_gives_the_same_tree_and_store_listing(vss_raw: Path, bw) -> None:
    """The image registry reads the QCOW2: no conversion needed, same stores, same entries."""
    direct = bw("partitions", "--json", VSS)
    assert direct.exit_code == 0, direct.stderr
    converted = bw("partitions", "--json", vss_raw).json()
    assert direct.json()["partitions"] == converted["partitions"]
    ours = bw("ls", VSS, "-r", "--all", "--json", "-p", "0/vss2")
    assert ours.exit_code == 0, ours.stderr
    assert ours.json()["entries"] == bw("ls", vss_raw, "-r", "--all", "--json", "-p",
                                        "0/vss2").json()["entries"]
