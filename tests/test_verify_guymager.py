"""Guymager's ``IMAGE.info`` beside its image: ``verify`` compares the hashes it records (of the
acquired data, and of its read-back of the image), checks the device size, lists the bad sectors
it replaced by zeros and weighs its final state.

Guymager is a GUI (no command line to run here), so the info files are written in its layout as
Guymager 0.8 writes it (title, sections, tab-and-space padding before each colon, the
bad-sector sentence with its indented list of ranges, the per-file MD5 table); the hashes in
them are ``md5sum``/``sha1sum``/``sha256sum``'s of the image, so a match is theirs.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

SECTOR = 512
BAD = ((300, 12), (2000, 1))  #: (first, count): the sectors Guymager "replaced by zeros"


def _digest(tool: str, path: Path) -> str:
    return subprocess.run([tool, os.fspath(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _image(folder: Path, name: str = "evidence.dd") -> Path:
    data = bytearray(os.urandom(4096 * SECTOR))
    for first, count in BAD:
        data[first * SECTOR:(first + count) * SECTOR] = bytes(count * SECTOR)
    image = folder / name
    image.write_bytes(data)
    return image


def _info(image: Path, *, state: str = "Finished successfully (with 13 bad sectors)",
          hashes: dict[str, str] | None = None, source: dict[str, str] | None = None,
          files: str = "No MD5 hashes available (configuration parameter CalcImageFileMD5 is "
                       "off)\nMD5                           \tImage file\nn/a"
                       "                           \tevidence.dd\n",
          size: int | None = None) -> str:
    """An info file in Guymager 0.8's layout for ``image`` (hashes: md5sum's and co.)."""
    require_tool("md5sum", "sha1sum", "sha256sum")
    hashes = hashes or {"MD5": _digest("md5sum", image), "SHA1": _digest("sha1sum", image),
                        "SHA256": _digest("sha256sum", image)}
    source = source or hashes
    ranges = ", ".join(f"{a}-{a + n - 1}" if n > 1 else str(a) for a, n in BAD)
    bad = sum(n for _, n in BAD)
    sentence = (f"During acquisition, {bad} bad sectors have been encountered. They have been "
                "replaced by zeroed sectors. The sector numbers are:")
    lines = ["", "GUYMAGER ACQUISITION INFO FILE", "=" * 30, "", "Guymager", "=" * 8, "",
             _row("Version", "0.8.8-3"), _row("Host name", "forensic-station"), "", "",
             "Device information", "=" * 18,
             'Command executed: bash -c "hdparm -I /dev/sdb"', "Information returned:", "-" * 100,
             "   /dev/sdb:", "   \t Logical/Physical Sector size:       \t512 bytes", "", "",
             "Acquisition", "=" * 11, "",
             _row("Linux device", "/dev/sdb"),
             _row("Device size", f"{size or image.stat().st_size} (2.1MB)"),
             "Format              \t: Linux dd raw image - file extension is .dd",
             _row("Image path and file name", f"/cases/{image.name}"),
             _row("Info  path and file name", f"/cases/{image.stem}.info"),
             _row("Hash calculation", "MD5, SHA-1 and SHA-256"),
             _row("Source verification", "on"), _row("Image verification", "on"), "",
             sentence, f"   {ranges}",
             f"During verification, {bad} bad sectors have been encountered. The sector numbers "
             "are:", f"   {ranges}", f"State: {state}", ""]
    for alg, value in hashes.items():
        lines += [_row(f"{alg} hash", value), _row(f"{alg} hash verified source", source[alg]),
                  _row(f"{alg} hash verified image", value)]
    lines += ["Source verification OK. The device delivered the same data during acquisition "
              "and verification.",
              "Image verification OK. The image contains exactly the data that was written.", "",
              _row("Acquisition started", "2026-12-01 14:46:53 (ISO format YYYY-MM-DD HH:MM:SS)"),
              _row("Ended", "2026-12-01 15:55:58 (1 hours, 9 minutes and 5 seconds)"), "", "",
              "Generated image files and their MD5 hashes", "=" * 42, "", files]
    return "\n".join(lines)


def _row(label: str, value: str) -> str:
    """``Label   \t: value   \t `` as Guymager pads its rows (tabs and spaces both ends)."""
    return f"{label:<20}\t: {value:<44}\t "


def _verify(image: Path) -> tuple[int, str]:
    result = run_bitwitness("verify", image)
    return result.exit_code, result.stdout + result.stderr


def test_guymager_hashes_bad_sectors_and_size_are_checked(tmp_path: Path) -> None:
    image = _image(tmp_path)
    (tmp_path / "evidence.info").write_text(_info(image))
    code, out = _verify(image)
    assert code == 0, out
    assert "verdict: VERIFIED" in out
    for alg in ("md5", "sha1", "sha256"):
        assert f"match  {alg} " in out
    listed = re.findall(r"unreadable at acquisition: sectors (\d+)-(\d+)", out)
    assert [(int(a), int(b)) for a, b in listed] == [(a, a + n - 1) for a, n in BAD]
    assert "Guymager numbers bad sectors in the source device's sectors" in out


def test_a_changed_image_mismatches(tmp_path: Path) -> None:
    image = _image(tmp_path)
    (tmp_path / "evidence.info").write_text(_info(image))
    with image.open("r+b") as out:
        out.seek(12345)
        out.write(b"\x01")
    code, out = _verify(image)
    assert code == 1
    assert "verdict: MISMATCH" in out


def test_an_aborted_acquisition_is_incomplete(tmp_path: Path) -> None:
    image = _image(tmp_path)
    (tmp_path / "evidence.info").write_text(
        _info(image, state="Aborted by user", size=2 * image.stat().st_size))
    code, out = _verify(image)
    assert code == 1
    assert "verdict: INCOMPLETE" in out
    assert "Guymager info file evidence.info records the acquisition as interrupted" in out


def test_a_different_source_read_back_is_noted_not_compared(tmp_path: Path) -> None:
    image = _image(tmp_path)
    other = {"MD5": "0" * 32, "SHA1": "1" * 40, "SHA256": "2" * 64}
    (tmp_path / "evidence.info").write_text(_info(image, source=other))
    code, out = _verify(image)
    assert code == 0, out
    assert "Guymager's second read of the source gave MD5 " + "0" * 32 in out


def test_split_image_files_are_checked_each(tmp_path: Path) -> None:
    require_tool("split")
    whole = _image(tmp_path, name="whole.dd")
    subprocess.run(["split", "-b", "1M", "-d", "-a", "3", os.fspath(whole),
                    os.fspath(tmp_path / "evidence.")], check=True)
    pieces = sorted(tmp_path.glob("evidence.0*"))
    assert len(pieces) == 2
    table = "MD5                           \tImage file\n" + "".join(
        f"{_digest('md5sum', p)}\t{p.name}\n" for p in pieces)
    (tmp_path / "evidence.info").write_text(_info(whole, files=table))
    whole.unlink()
    code, out = _verify(pieces[0])
    assert code == 0, out
    for piece in pieces:
        assert re.search(rf"match  md5 of file {re.escape(piece.name)}: Guymager info file "
                         rf"evidence\.info records {_digest('md5sum', piece)}", out), out


@pytest.mark.parametrize("line", ["   300-x", "   300-12"])
def test_ranges_that_are_not_ranges_stop_the_list(line: str, tmp_path: Path) -> None:
    """A list line that is not "a-b, c" ends the list there (no made-up sectors): "300-12"
    runs backwards and is left out."""
    image = _image(tmp_path)
    text = _info(image).replace(f"   {BAD[0][0]}-{BAD[0][0] + BAD[0][1] - 1}, {BAD[1][0]}",
                                line, 1)
    (tmp_path / "evidence.info").write_text(text)
    code, out = _verify(image)
    assert code == 0, out
    assert "unreadable at acquisition" not in out
