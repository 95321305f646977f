# Judge train_and_draw.sh's draws on a CPU with the protocol's own commands, against the original CUHK01 PNGs:
#   bash benchmarks/lent_gpu/judge.sh runs/gpu   (the device's returned files in runs/gpu/out/)
cd "$(dirname "$0")/../.."
set -e
G=${1:-runs/gpu}; M=../shared/data/models/osnet_x0_25_msmt17.onnx
for t in $G/out/*.tgz; do
  name=$(basename $t .tgz); [ $name = logs ] && { tar xzf $t -C $G; continue; }
  [ -d $G/gen-$name ] || tar xzf $t -C $G
  d=$G/gen-$name
  python - $d <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
m = json.loads((d / "manifest.json").read_text()); m["config"]["data"] = "cuhk01-485:../shared/data/cuhk01"
(d / "manifest.json").write_text(json.dumps(m, indent=1))
lines = []
for line in (d / "manifest.jsonl").read_text().splitlines():
    e = json.loads(line)
    e.pop("source", None)  # the judge reads the original CUHK01, not the carried JPEG copies
    if e.get("reference"): e["reference"] = e["reference"].replace(".jpg", ".png")
    if e.get("references"): e["references"] = [r.replace(".jpg", ".png") for r in e["references"]]
    lines.append(json.dumps(e))
(d / "manifest.jsonl").write_text("\n".join(lines) + "\n")
PY
  case $name in
    *-query) [ -f $d.json ] || flock /tmp/cpu.lock diffreid consistency --generated $d --model $M --reference-camera 2 --real-camera 1 --out $d.json ;;
    *-train) [ -d $d-ctf ] || flock /tmp/cpu.lock diffreid filter --generated $d --scorer cuhk01-485:../shared/data/cuhk01=$M --out $d-ctf ;;
  esac
done
echo JUDGED
