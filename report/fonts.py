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
font we refuse to render rather than print an empty box in a court document, naming the font
package that would supply it. Only text the PDF lays out is checked (after its visible
spelling: controls are ``^``/``\\uNNNN`` there), through the glyphs fpdf2 itself found missing,
so a name the PDF never prints (an exported file's, listed in the JSON and DFXML reports only)
cannot refuse it.
"""

from __future__ import annotations

import os
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


#: Blocks of Hangul (jamo, compatibility jamo, syllables): Droid Sans Fallback has few of them.
_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF))
#: Blocks the CJK fonts cover: CJK symbols, kana, ideographs, compatibility and full-width forms.
_CJK = ((0x2E80, 0x312F), (0x3190, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F),
        (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))


def _within(code: int, blocks: tuple[tuple[int, int], ...]) -> bool:
    return any(first <= code <= last for first, last in blocks)


def supplier(char: str, fonts: FontSet) -> str:
    """Which font would draw ``char``, in words an examiner can act on; only fonts this module
    looks for are named, since any other would not be used."""
    code = ord(char)
    if _within(code, _HANGUL):
        return ("Hangul: install fonts-noto-cjk (NotoSansCJK-Regular.ttc, used when no Droid "
                "Sans Fallback file is found; Droid Sans Fallback lacks most Hangul syllables)")
    if _within(code, _CJK):
        if fonts.cjk is None:
            return "no CJK font was found: install fonts-droid-fallback"
        return f"{fonts.cjk.name} lacks it: install fonts-noto-cjk"
    return "no font BitWitness uses (DejaVu, a CJK font) has it"


def refuse_missing(missing: list[str], fonts: FontSet) -> None:
    """Refuse (``InputError``) naming ``missing``, the characters no font can draw, and which
    font package would supply each: a court report must never show a name with letters left
    out or boxed."""
    if not missing:
        return
    named = "; ".join(f"{ch!r} (U+{ord(ch):04X}): {supplier(ch, fonts)}" for ch in missing[:5])
    more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
    raise InputError(
        f"the PDF report cannot draw {named}{more}; the HTML and JSON reports carry them"
    )
