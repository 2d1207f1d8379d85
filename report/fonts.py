"""Finding TrueType fonts for the PDF report at run time.

fpdf2's built-in fonts cover Latin-1 only, and a court report must print any name it is given
(``Zoë Ångström``, ``証拠ディスク``). We use system fonts rather than shipping them so that the
package stays small:

* DejaVu Sans / DejaVu Sans Mono (Debian ``fonts-dejavu-core``) for Latin, Greek, Cyrillic and
  the monospace hash tables. Required.
* Droid Sans Fallback (Debian ``fonts-droid-fallback``, one 4 MB TTF covering Chinese, Japanese
  and Korean) as the fallback for CJK. Noto Sans CJK or WenQuanYi Micro Hei are accepted too.
  Only needed when the report contains such characters.

fpdf2 embeds only the glyphs used (subsetting), so reports stay small whatever the fonts weigh.
A lab can drop its own ``.ttf`` files into ``bitwitness/report/fonts/`` or point
``BITWITNESS_FONT_DIR`` at a folder; those are searched first. When a character is covered by no
font we refuse to render rather than print an empty box in a court document.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bitwitness.errors import InputError

_PACKAGE_FONTS = Path(__file__).resolve().parent / "fonts"
_SYSTEM_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
    Path("/Library/Fonts"),
    Path("/System/Library/Fonts"),
)

# (role, candidate file names in order of preference, collection index for .ttc files)
_CANDIDATES: dict[str, tuple[str, ...]] = {
    "sans": ("DejaVuSans.ttf",),
    "sans-bold": ("DejaVuSans-Bold.ttf",),
    "mono": ("DejaVuSansMono.ttf",),
    "mono-bold": ("DejaVuSansMono-Bold.ttf",),
    "cjk": (
        "DroidSansFallbackFull.ttf",
        "DroidSansFallback.ttf",
        "NotoSansCJK-Regular.ttc",
        "NotoSansCJKjp-Regular.otf",
        "wqy-microhei.ttc",
    ),
}

REQUIRED_ROLES = ("sans", "sans-bold", "mono")
INSTALL_HINT = (
    "install the Debian packages fonts-dejavu-core and fonts-droid-fallback "
    "(scripts/install-tools.sh does), or put the .ttf files in BITWITNESS_FONT_DIR"
)


@dataclass(frozen=True)
class FontSet:
    """Paths of the fonts found; ``cjk`` and ``mono_bold`` are optional."""

    sans: Path
    sans_bold: Path
    mono: Path
    mono_bold: Path | None
    cjk: Path | None


def _search_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("BITWITNESS_FONT_DIR")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(_PACKAGE_FONTS)
    dirs.extend(_SYSTEM_DIRS)
    return [d for d in dirs if d.is_dir()]


@cache
def _index(dirs: tuple[Path, ...]) -> dict[str, Path]:
    """File name -> first path found, searching ``dirs`` in order (recursively)."""
    found: dict[str, Path] = {}
    wanted = {name for names in _CANDIDATES.values() for name in names}
    for base in dirs:
        for root, _subdirs, files in os.walk(base):
            for name in files:
                if name in wanted and name not in found:
                    found[name] = Path(root) / name
    return found


def find_fonts() -> FontSet:
    """Locate the fonts or raise :class:`InputError` saying which package to install."""
    index = _index(tuple(_search_dirs()))
    chosen: dict[str, Path | None] = {}
    for role, names in _CANDIDATES.items():
        chosen[role] = next((index[n] for n in names if n in index), None)
    missing = [role for role in REQUIRED_ROLES if chosen[role] is None]
    if missing:
        files = ", ".join(_CANDIDATES[r][0] for r in missing)
        raise InputError(f"PDF report needs the font(s) {files}: {INSTALL_HINT}")
    return FontSet(
        sans=chosen["sans"],  # type: ignore[arg-type]
        sans_bold=chosen["sans-bold"],  # type: ignore[arg-type]
        mono=chosen["mono"],  # type: ignore[arg-type]
        mono_bold=chosen["mono-bold"],
        cjk=chosen["cjk"],
    )


@cache
def _coverage(path: Path) -> frozenset[int]:
    """Code points a font file has glyphs for."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), fontNumber=0, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


def uncovered(texts: Iterable[str], fonts: FontSet) -> list[str]:
    """Characters in ``texts`` that none of ``fonts`` can draw (controls and spaces ignored)."""
    covered = set(_coverage(fonts.sans)) | _coverage(fonts.mono)
    if fonts.cjk is not None:
        covered |= _coverage(fonts.cjk)
    missing: dict[str, None] = {}
    for text in texts:
        for ch in text:
            cp = ord(ch)
            if cp < 0x20 or ch.isspace() or cp in covered:
                continue
            missing[ch] = None
    return list(missing)


def check_coverage(texts: Iterable[str], fonts: FontSet) -> None:
    """Refuse (``InputError``) when some character would print as an empty box."""
    refuse_missing(uncovered(texts, fonts), fonts)


def refuse_missing(missing: list[str], fonts: FontSet) -> None:
    """Refuse (``InputError``) naming ``missing``, the characters no font can draw: a court
    report must never show a name with letters left out or boxed."""
    if not missing:
        return
    shown = " ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    hint = (" no CJK font was found: install fonts-droid-fallback;" if fonts.cjk is None else "")
    raise InputError(
        f"the PDF report cannot draw {shown}{more}:{hint} the HTML and JSON reports can"
    )
