#!/usr/bin/env python3
"""Rebuild the aligned-face fixtures: ``fixtures/faces/aligned/<stem>.png`` + ``faces.json``.

Detects each photo in ``SHARED_DIR/faces`` with the registered YuNet model, aligns the largest face to the ArcFace
5-point template (112×112) and writes the crops atomically. Re-run after changing the detector or the alignment,
review the diff, then commit. ``tests/test_faces.py`` checks that the pipeline still reproduces these files.

Usage::

    python scripts/build_aligned_faces.py [--src DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from hailo_qa import config
    from hailo_qa.evaluate import faces
    from hailo_qa.errors import QAError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=config.SHARED_DIR / "faces",
                    help="folder of face photos. Default: %(default)s")
    ap.add_argument("--out", type=Path, default=faces.ALIGNED_DIR, help="output folder. Default: %(default)s")
    args = ap.parse_args(argv)
    try:
        written = faces.build_aligned_faces(faces.face_images(args.src), args.out)
    except QAError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for stem, path in written.items():
        print(f"{stem}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
