"""Pack a prepared photo folder for a device machine: JPEG q98 4:4:4 in a tar, under the 64 MiB carry limit.

python scripts/pack_photos.py /work/traindata traindata.tar
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the output of `dpfusion data prepare` (train/ and validation/)")
    parser.add_argument("tar", help="tar file to write")
    args = parser.parse_args()
    root = Path(args.folder)
    with tarfile.open(args.tar, "w") as tar:
        for path in sorted(root.rglob("*.png")):
            buffer = io.BytesIO()
            Image.open(path).convert("RGB").save(buffer, format="JPEG", quality=98, subsampling=0)
            info = tarfile.TarInfo(path.relative_to(root).with_suffix(".jpg").as_posix())
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    print(f"{args.tar}: {Path(args.tar).stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
