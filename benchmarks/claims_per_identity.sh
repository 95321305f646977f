# Issue 22's images-per-identity question (docs/results.md): Diff-Person with COUNTS images per person (default
# x16, x4 and x1), all drawn by ONE retrain of the generator so that their rows pair by seed; ImageNet
# MobileNetV2 then Diff-Person, seeds 0-2, each backbone also zero-shot on PRID, GRID and i-LIDS. The first
# count is drawn; the smaller ones are the first images of that draw (an image depends on (seed, pid, index)
# only), copied, not drawn again. The seeds run interleaved (every count for seed 0, then seed 1, ...) so that a
# run cut short leaves paired seeds. SETTINGS as in claims_cuhk01.sh (empty: zero-shot only). Resumable:
# rerun the same command.
#   bash benchmarks/claims_per_identity.sh                      (about 4-4.5 hours on a 2-core CPU from nothing)
#   COUNTS="4 1" SETTINGS= bash benchmarks/claims_per_identity.sh   (zero-shot x4 against x1, about 2 h 20 min)
cd "$(dirname "$0")/.."
set -uo pipefail
COUNTS=${COUNTS:-"16 4 1"}; export SETTINGS=${SETTINGS-supervised}
G=runs/scratch-ref
if [ ! -f $G/manifest.json ]; then  # the documented image-level IIR recipe (section "The image-level IIR ...")
  echo "== base-train $(date)"
  flock /tmp/cpu.lock diffreid base-train --data cuhk01-485:../shared/data/cuhk01 --iir reference --out $G \
    --steps 2000 --batch-size 48 --seed 0 --set 'unet_channels=[96,192,256]' --set layers_per_block=1 \
    --set warmup_steps=200 --set sample_every=500 --set checkpoint_every=100 || exit 1
fi
read -r top rest <<< "$COUNTS"
for seed in 0 1 2; do
  for n in $COUNTS; do
    R=runs/claims-x$n
    if [ $n != $top ] && [ ! -f $R/generated/manifest.jsonl ]; then
      for d in runs/claims-x$top/generated/images/*/; do
        p=$(basename $d); mkdir -p $R/generated/images/$p
        for i in $(seq 0 $((n - 1))); do cp -n $d/${p}_$(printf %04d $i).png $R/generated/images/$p/; done
      done
    fi
    echo "== x$n seed $seed $(date)"
    SEEDS=$seed PER_IDENTITY=$n ARMS=dp bash benchmarks/claims_cuhk01.sh $G/model $R
    [ -f $R/generated/manifest.jsonl ] || exit 1
  done
done
prev=$top  # each count against the next smaller one, paired by seed
for n in $rest; do
  diffreid compare runs/claims-x$prev/results runs/claims-x$n/results --baseline imagenet+dp@runs/claims-x$n/results
  prev=$n
done
echo "== done $(date)"
