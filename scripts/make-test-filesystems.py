#!/usr/bin/env python3
"""Build the parity tests' file-system images (tests/fsimages.py) into a folder.

    scripts/make-test-filesystems.py OUT_DIR [NAME ...]

Names: ntfs fat12 fat16 fat32 exfat ext2 ext3 ext4 iso9660 ufs1 hostile_ext2 hostile_fat
(default: all). A builder that cannot run here (missing tool, no root or FUSE) is skipped
with the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fsimages import BUILDERS, Unavailable


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in argv[1:] or list(BUILDERS):
        try:
            path = BUILDERS[name](out / f"{name}.img")
        except Unavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
