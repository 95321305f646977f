# The paper's claim on real CUHK01 (issue 22, docs/results.md): ImageNet MobileNetV2 against ImageNet then a
# second pre-training on the real training images, on Diff-Person, or on both, over seeds.
#   [SEEDS="0 1 2"] [SETTINGS="supervised few-shot small-scale", empty: zero-shot only] [ARMS="dp real imagenet real+dp"]
#   [PER_IDENTITY=4] bash benchmarks/claims_cuhk01.sh GENERATOR OUT
# GENERATOR: a base model trained with --iir reference on CUHK01 1-485 only; it draws PER_IDENTITY images of
# every training person from that person's own training images (zero-shot, no fine-tuning), the CTF keeps
# those the OSNet x0.25 MSMT17 model accepts (its threshold from the training identities only), and the
# kept images are Diff-Person. Each arm is pre-trained (30 epochs, as the downstream runs) and fine-tuned
# with the same seed; each pre-trained backbone is also tested zero-shot on PRID, GRID and i-LIDS (benchmark
# small, its rows in the same results table); the 486 test people (486-971) shape nothing. One Diff-Person
# (sampling seed 0): the seeds cover pre-training and fine-tuning, not the generator. real+dp pre-trains on
# both with --merge-generated: a generated person is the class of the real person it was drawn from.
# Resumable: a finished run is kept.
cd "$(dirname "$0")/.."
set -euo pipefail
G=$1; R=$2; mkdir -p $R
D=../shared/data; C=cuhk01-485:$D/cuhk01
IMAGENET=imagenet:$D/models/mobilenet_v2_imagenet_features.safetensors
SEEDS=${SEEDS:-"0 1 2"}; SETTINGS=${SETTINGS-"supervised few-shot small-scale"}
ARMS=${ARMS:-"dp real imagenet real+dp"}; PER_IDENTITY=${PER_IDENTITY:-4}
RECIPE=(--preset bot-r18-cpu --set backbone=mobilenet_v2 --set "input_size=[64,32]" --set epochs=30
        --set "lr_steps=[21,27]")
[ -f $R/generated/manifest.jsonl ] || flock /tmp/cpu.lock diffreid generate --generator $G --references $C \
    --split train --per-identity $PER_IDENTITY --batch-size 48 --no-injection --guidance 1 --seed 0 --out $R/generated
[ -f $R/diff-person/filter_report.json ] || flock /tmp/cpu.lock diffreid filter --generated $R/generated \
    --scorer $C=$D/models/osnet_x0_25_msmt17.onnx --out $R/diff-person
data() {  # the arm's pre-training data
  case $1 in
    real) echo "--data $C" ;;
    dp) echo "--data diffperson:$R/diff-person" ;;
    real+dp) echo "--data $C --data diffperson:$R/diff-person --merge-generated" ;;
  esac
}
for arm in $ARMS; do for seed in $SEEDS; do
  init=$IMAGENET; label=imagenet
  if [ $arm != imagenet ]; then
    label=imagenet+$arm
    init=$R/pretrain/$arm/seed$seed/backbone.safetensors
    [ -f $init ] || flock /tmp/cpu.lock diffreid pretrain $(data $arm) --out $R/pretrain/$arm/seed$seed \
        --init $IMAGENET --seed $seed "${RECIPE[@]}"
  fi
  for setting in $SETTINGS; do
    fraction=(); [ $setting = few-shot ] && fraction=(--fraction 0.25); [ $setting = small-scale ] && fraction=(--fraction 0.5)
    out=$R/settings/$arm/$setting/seed$seed
    [ -f $out/results.json ] || flock /tmp/cpu.lock diffreid setting $setting --data $C --init $init "${fraction[@]}" \
        --label $label --out $out --table $R/results --seed $seed "${RECIPE[@]}"
  done
done; done
# zero-shot on PRID, GRID, i-LIDS (domain generalisation on real data): the ImageNet features (one fixed
# model) and every pre-trained backbone, at the 64x32 they were trained at, as rows of the same results table
# (a rerun computes only backbones not benchmarked yet)
models=(--model $D/models/mobilenet_v2_imagenet_features.safetensors --label imagenet)
for arm in $ARMS; do for seed in $SEEDS; do
  if [ -f $R/pretrain/$arm/seed$seed/backbone.safetensors ]; then
    models+=(--model $R/pretrain/$arm/seed$seed --label imagenet+$arm)
  fi
done; done
flock /tmp/cpu.lock diffreid benchmark small "${models[@]}" --input-size 64x32 --out $R/small-bench \
    --table $R/results > /dev/null
# against ImageNet (the paper's comparison), then against the real images the generated people came from
diffreid compare $R/results --baseline imagenet
if [[ " $ARMS " == *" real "* ]]; then diffreid compare $R/results --baseline imagenet+real; fi
