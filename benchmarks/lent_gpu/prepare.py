"""What a lent GPU needs to train and draw the reference model: CUHK01's training identities and
the test identities' camera-A images as a `list:` dataset of JPEG copies, and diffusers as a wheel.

The device machine reaches no registry and takes at most 64 MiB of working tree, of which the
repository is about 42 MB, so the PNGs travel as JPEG (quality 90, no chroma subsampling: 15 MB).
Run from the repository root: `python benchmarks/lent_gpu/prepare.py ../shared/data/cuhk01 .gpu`,
with `/.gpu/` in .git/info/exclude; then carry `.gpu` (see train_and_draw.sh).
"""

import subprocess
import sys
from pathlib import Path

from PIL import Image

from diffreid.data import load_dataset


def main(cuhk01: str, dest: str) -> None:
    import diffusers

    dataset, root = load_dataset(f"cuhk01-485:{cuhk01}"), Path(dest) / "cuhk01"
    (root / "campus").mkdir(parents=True, exist_ok=True)
    for split in ("train", "query"):
        rows = ["path,pid,camid"]
        for record in dataset.split(split):
            relative = f"campus/{Path(record.path).stem}.jpg"
            Image.open(record.path).convert("RGB").save(root / relative, "JPEG", quality=90, subsampling=0)
            rows.append(f"{relative},{record.pid},{record.camid}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    (root / "gallery.csv").write_text("path,pid,camid\n")  # the judge reads camera B here, from the originals
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(Path(dest) / "whl"),
                    f"diffusers=={diffusers.__version__}"], check=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
