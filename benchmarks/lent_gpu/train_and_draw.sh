# On a lent GPU: train the reference model for TRAIN_S seconds and draw the identity bar's images
# (and the CTF's) from its exports along the way; judge.sh reads them back on a CPU.
# One training process at a time: two on one GPU take turns (docs/results.md, "A lent H200").
# Run from the repository root with .gpu/ made by prepare.py carried, e.g. through the device tool:
#   OUT=$OUT TRAIN_S=480 bash benchmarks/lent_gpu/train_and_draw.sh 2>&1 | tee $OUT/run.log
# Env: TRAIN_S, STEPS, EVERY (steps between exports), BATCH, CHANNELS, LAYERS, DATA, CTF_IDS, OUT;
# ARGS: more base-train options (e.g. "--set reference_tokens=8"); RG: more reference guidances to draw
# the last export's unseen people at (e.g. "4 16"), each its own .tgz.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
T0=$(date +%s)
TRAIN_S=${TRAIN_S:-480}; STEPS=${STEPS:-10000}; EVERY=${EVERY:-1000}; BATCH=${BATCH:-128}
CHANNELS=${CHANNELS:-[96,192,256]}; LAYERS=${LAYERS:-1}; DATA=${DATA:-list:.gpu/cuhk01}
W=/tmp/w; mkdir -p $W $OUT
if ! python3 -c "import diffusers" 2>/dev/null; then  # the device machine has torch and transformers, not diffusers
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi -L 2>/dev/null
python3 -m diffreid base-train --data $DATA --iir reference --out $W/model --steps $STEPS --batch-size $BATCH \
  --seed 0 --set "unet_channels=$CHANNELS" --set layers_per_block=$LAYERS --set warmup_steps=200 \
  --set sample_every=$EVERY --set checkpoint_every=$((STEPS * 10)) --set log_every=50 ${ARGS:-} > $W/train.log 2>&1 &
TRAIN=$!
snapshot() {  # copy each export once its sample sheet (written after it) appears
  for sheet in $W/model/samples/step-*.json; do
    [ -f "$sheet" ] || continue
    step=$(basename $sheet .json); [ -d $W/snap-$step ] || cp -r $W/model/model $W/snap-$step
  done
}
while kill -0 $TRAIN 2>/dev/null; do
  snapshot
  [ $(( $(date +%s) - T0 )) -ge $TRAIN_S ] && kill $TRAIN
  sleep 2
done
snapshot
echo "training stopped at $(( $(date +%s) - T0 )) s"; ls -d $W/snap-* 2>/dev/null
draw() {  # name, snapshot, split, extra generate options; the folder gen-NAME comes back as NAME.tgz
  python3 -m diffreid generate --generator $W/$2 --references $DATA --split $3 --batch-size 243 --no-injection \
    --guidance 1 --out $W/gen-$1 "${@:4}" > $W/gen-$1.log 2>&1 \
    && tar czf $OUT/$1.tgz -C $W gen-$1 && echo "$1 drawn at $(( $(date +%s) - T0 )) s"
}
keep=$((5 - $(echo ${RG:-} | wc -w)))  # $OUT takes 8 files: run.log, logs, train, the RG draws and these
snaps=$(ls -d $W/snap-* 2>/dev/null | sort | xargs -n1 basename | tail -n $keep)
last=$(echo "$snaps" | tail -n 1)
[ -n "$last" ] && draw $last-train $last train --per-identity 2 --identities ${CTF_IDS:-$(seq 1 4 485)} &
for snap in $snaps; do draw $snap-query $snap query --per-identity 1 & done
for rg in ${RG:-}; do [ -n "$last" ] && draw $last-rg$rg-query $last query --per-identity 1 --reference-guidance $rg & done
wait
cp $W/model/metrics.jsonl $W/metrics.jsonl 2>/dev/null
tar czf $OUT/logs.tgz -C $W train.log metrics.jsonl $(cd $W && ls model/samples/*.png gen-*.log 2>/dev/null | tail -n 12)
echo "all done at $(( $(date +%s) - T0 )) s"
