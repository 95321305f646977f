# Issue 22's images-per-identity question (docs/results.md): Diff-Person x16, x4 and x1 images per person,
# all drawn by ONE retrain of the generator so that their rows pair by seed; supervised, ImageNet MobileNetV2
# then Diff-Person, seeds 0-2. The x4 and x1 draws are the first images of the x16 draw (an image depends on
# (seed, pid, index) only), copied, not drawn again. The seeds run interleaved (x16, x4, x1 for seed 0, then
# seed 1, ...) so that a run cut short leaves paired seeds. Resumable: rerun the same command.
#   bash benchmarks/claims_per_identity.sh            (about 4-4.5 hours on a 2-core CPU from nothing)
cd "$(dirname "$0")/.."
set -uo pipefail
G=runs/scratch-ref
if [ ! -f $G/manifest.json ]; then  # the documented image-level IIR recipe (section "The image-level IIR ...")
  echo "== base-train $(date)"
  flock /tmp/cpu.lock diffreid base-train --data cuhk01-485:../shared/data/cuhk01 --iir reference --out $G \
    --steps 2000 --batch-size 48 --seed 0 --set 'unet_channels=[96,192,256]' --set layers_per_block=1 \
    --set warmup_steps=200 --set sample_every=500 --set checkpoint_every=100 || exit 1
fi
for seed in 0 1 2; do
  echo "== x16 seed $seed $(date)"
  SEEDS=$seed PER_IDENTITY=16 ARMS=dp SETTINGS=supervised bash benchmarks/claims_cuhk01.sh $G/model runs/claims-x16
  [ -f runs/claims-x16/generated/manifest.jsonl ] || exit 1
  for n in 4 1; do
    R=runs/claims; [ $n = 1 ] && R=runs/claims-x1
    if [ ! -f $R/generated/manifest.jsonl ]; then
      for d in runs/claims-x16/generated/images/*/; do
        p=$(basename $d); mkdir -p $R/generated/images/$p
        for i in $(seq 0 $((n - 1))); do cp -n $d/${p}_$(printf %04d $i).png $R/generated/images/$p/; done
      done
    fi
    echo "== x$n seed $seed $(date)"
    SEEDS=$seed PER_IDENTITY=$n ARMS=dp SETTINGS=supervised bash benchmarks/claims_cuhk01.sh $G/model $R
  done
done
diffreid compare runs/claims/results runs/claims-x16/results --baseline imagenet+dp
diffreid compare runs/claims/results runs/claims-x1/results --baseline imagenet+dp@runs/claims-x1/results
echo "== done $(date)"
