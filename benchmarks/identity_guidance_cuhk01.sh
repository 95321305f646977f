# Identity guidance on CUHK01 (docs/results.md): tune its step on training identities, then read the
# identity bar on the 486 never-seen people over sampling seeds, guided against unguided.
#   [THIRD=RUN] [CTF=0] bash benchmarks/identity_guidance_cuhk01.sh GENERATOR OUT
# GENERATOR: a base model trained with --iir reference on CUHK01 1-485 only. Resumable: a finished
# folder or judgement is kept. Guide: OSNet x0.25 trained on Market-1501 (torchreid); judge: the
# issue's OSNet x0.25 MSMT17 ONNX model, and, as a second judge that shares neither architecture nor
# training with the guide, ImageNet MobileNetV2 features (no Re-ID training: a weaker judge, read
# against its own reading of the real images). The step is chosen on training identities (every 4th
# of 1-485), never on the test people. THIRD: a `diffreid train` run judging too (docs/results.md: a
# BoT ResNet-18 trained on CUHK01 1-485, an architecture the guide does not share); CTF=0 skips the
# filter on training identities.
cd "$(dirname "$0")/.."
set -euo pipefail
G=$1; R=$2; mkdir -p $R
C=cuhk01-485:../shared/data/cuhk01; D=../shared/data/models
JUDGE=$D/osnet_x0_25_msmt17.onnx; SECOND=$D/mobilenet_v2_imagenet_features.safetensors; GUIDE=${GUIDE:-$D/osnet_x0_25_market1501.pth}
STEPS_TRIED=${STEPS_TRIED:-"0 0.1 0.3 1"}; SEEDS=${SEEDS:-"0 1 2"}; UNTIL=${UNTIL:-0.6}
draw() {  # draw OUT SPLIT STEP SEED [args...]
  local out=$1 split=$2 w=$3 seed=$4; shift 4
  [ -f $out/manifest.jsonl ] || flock /tmp/cpu.lock diffreid generate --generator $G --references $C --split $split \
      --per-identity 1 --batch-size 48 --no-injection --guidance 1 --seed $seed --out $out \
      --identity-model $GUIDE --identity-guidance $w --identity-until $UNTIL "$@"
  [ -f $out.json ] || flock /tmp/cpu.lock diffreid consistency --generated $out --model $JUDGE \
      --reference-camera 2 --real-camera 1 --out $out.json
}
for w in $STEPS_TRIED; do draw $R/train-w$w train $w 0 --identities $(seq 1 4 485); done
BEST=$(python - $R $STEPS_TRIED <<'PY'
import json, sys
from pathlib import Path
r = Path(sys.argv[1])
share = {w: next(iter(json.loads((r / f"train-w{w}.json").read_text()).values()))["generated"]["closer_to_own"]
         for w in sys.argv[2:]}
print(max(share, key=lambda w: (share[w], -float(w))))
PY
)
echo "step chosen on training identities: $BEST"
for seed in $SEEDS; do for w in 0 $BEST; do
  draw $R/unseen-w$w-s$seed query $w $seed
  [ -f $R/unseen-w$w-s$seed.imagenet.json ] || flock /tmp/cpu.lock diffreid consistency --generated $R/unseen-w$w-s$seed \
      --model $SECOND --reference-camera 2 --real-camera 1 --out $R/unseen-w$w-s$seed.imagenet.json
  [ -z "${THIRD:-}" ] || [ -f $R/unseen-w$w-s$seed.third.json ] || flock /tmp/cpu.lock diffreid consistency \
      --generated $R/unseen-w$w-s$seed --model $THIRD --reference-camera 2 --real-camera 1 --out $R/unseen-w$w-s$seed.third.json
done; done
python - $R $BEST ${THIRD:+third} $SEEDS <<'PY'
import json, sys
from pathlib import Path
from diffreid.evaluation.intervals import paired_verdict, t_interval
r, best = Path(sys.argv[1]), sys.argv[2]
judges = {"imagenet": "ImageNet MobileNetV2", **({"third": "the THIRD run"} if sys.argv[3] == "third" else {})}
seeds = [int(s) for s in sys.argv[3 + (sys.argv[3] == "third"):]]
def judged(name):
    return next(iter(json.loads((r / f"{name}.json").read_text()).values()))
rows = {}
for w in ("0", best):
    rows[w] = {s: judged(f"unseen-w{w}-s{s}") for s in seeds}
    for s, j in rows[w].items():
        g, c = j["generated"], j.get("copies", {})
        lo, hi = g["closer_to_own_interval"]
        print(f"step {w} seed {s}: closer to own {g['closer_to_own']:.1%} ({lo:.1%}-{hi:.1%}) of {g['images']}, "
              f"own cos {g['own_centroid_cosine']:.3f}, other {g['nearest_other_centroid_cosine']:.3f}, "
              f"rank-1 {g['rank1']:.1%}, mAP {g['mAP']:.1%}, guard {c.get('passes_near_duplicate_guard', 0):.0%}, "
              f"cos ref {c.get('cosine_to_nearest_reference', 0):.3f}, pixel {c.get('pixel_difference_to_nearest_reference', 0):.3f}")
    others = {name: {s: judged(f"unseen-w{w}-s{s}.{key}") for s in seeds} for key, name in judges.items()}
    for key in ("closer_to_own", "own_centroid_cosine", "nearest_other_centroid_cosine", "rank1", "mAP"):
        for name, found in (("OSNet MSMT17", rows[w]), *others.items()):
            mean, half = t_interval([j["generated"][key] for j in found.values()])
            print(f"step {w}, {name}: {key} {mean:.4f} ± {half if half is not None else float('nan'):.4f} "
                  f"over seeds {seeds}")
    for name, found in (("OSNet MSMT17", rows[w]), *others.items()):
        real = found[seeds[0]]["real"]
        print(f"{name} on the real camera-A images: closer to own {real['closer_to_own']:.1%}, "
              f"own cos {real['own_centroid_cosine']:.3f}, nearest other {real['nearest_other_centroid_cosine']:.3f}")
verdict = paired_verdict({s: rows[best][s]["generated"]["closer_to_own"] for s in seeds},
                  {s: rows["0"][s]["generated"]["closer_to_own"] for s in seeds}, min_seeds=3)
print(f"guided (step {best}) against unguided, closer to own, paired by seed: {verdict}")
for key, name in judges.items():
    other = paired_verdict(*({s: judged(f"unseen-w{w}-s{s}.{key}")["generated"]["closer_to_own"] for s in seeds}
                      for w in (best, "0")), min_seeds=3)
    print(f"the same read by {name}: {other}")
PY
# the CTF on training identities at the chosen step, as the issue's bar reads it
if [ "${CTF:-1}" = 1 ]; then
  draw $R/train2-w$BEST train $BEST 0 --identities $(seq 1 4 485) --per-identity 2
  [ -f $R/ctf-train/manifest.json ] || flock /tmp/cpu.lock diffreid filter --generated $R/train2-w$BEST \
      --scorer $C=$JUDGE --out $R/ctf-train
  python -c "import json; print('CTF on training identities:', json.load(open('$R/ctf-train/manifest.json'))['counts'])"
fi
