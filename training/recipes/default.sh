#!/usr/bin/env bash
# Rebuild the shipped default model from nothing: voxel episodes -> tokenizer -> latent shards ->
# a wider decoder for those latents -> world model (teacher) -> 2-step distilled student -> motion
# prior -> IDM -> one model directory.
#
#   bash training/recipes/default.sh                      # the shipped recipe (a GPU + 16 cores: ~15 min)
#   SCALE=cpu bash training/recipes/default.sh            # a smaller run that fits 2 CPU cores (~6 h)
#   SCALE=smoke bash training/recipes/default.sh          # the same chain in a few minutes on a CPU
#   RUN=runs/mine MODEL_OUT=models/mine bash training/recipes/default.sh
#   STAGES="idm" bash training/recipes/default.sh         # some stages only (default: all, in order)
#
# Every stage resumes: finished episodes and shards are skipped, training jobs continue from their
# checkpoints. The jobs stop at `max_steps` or at their time budget (`train.max_minutes`), whichever
# comes first, so a slower machine trains fewer steps rather than for longer. Each stage's log is
# written to $RUN/logs/<stage>.log.
set -euo pipefail

SCALE=${SCALE:-full}
RUN=${RUN:-runs/default}
DATA=${DATA:-data/default}
MODEL_OUT=${MODEL_OUT:-$RUN/model}
PYTHON=${PYTHON:-python}
WORKERS=${WORKERS:-$(nproc)}
STAGES=${STAGES:-data tokenizer latents decoder world distill prior idm}
SIZE=256x144
# The world model and its distillation train under bf16 autocast wherever the hardware computes bf16
# natively: a GPU, or a CPU with AVX512-BF16 or AMX (on a 2-core EPYC a world-model step is 1.6x
# faster, a distillation step 1.45x); else fp32.
PRECISION=${PRECISION:-$($PYTHON -c 'from training.distributed import pick_device
from training.trainer import native_bf16; print("bf16" if native_bf16(pick_device()) else "fp32")')}

case $SCALE in
  full)
    EPISODES=144 FRAMES=600 VAL_EPISODES=8
    TOK_STEPS=4000 TOK_MIN=${TOK_MIN:-1.5} TOK_BATCH=16 DEC_STEPS=4000 DEC_MIN=${DEC_MIN:-1.5} DEC_BATCH=16
    WORLD_STEPS=4000 WORLD_MIN=${WORLD_MIN:-3.5} WORLD_BATCH=64 WORLD_VAL=1000
    DISTILL_STEPS=1500 DISTILL_MIN=${DISTILL_MIN:-1.5} DISTILL_BATCH=32 DISTILL_VAL=1500
    IDM_STEPS=6000 IDM_EPISODES=192 IDM_VAL_EPISODES=16 IDM_FRAMES=400
    ;;
  cpu)  # what fits a 2-core CPU in a day: about 8 hours (world model 170 min, two IDMs 80-90 each, decoder 45)
    EPISODES=32 FRAMES=400 VAL_EPISODES=4
    TOK_STEPS=2200 TOK_MIN=${TOK_MIN:-37} TOK_BATCH=4 DEC_STEPS=3000 DEC_MIN=${DEC_MIN:-45} DEC_BATCH=8
    WORLD_STEPS=4200 WORLD_MIN=${WORLD_MIN:-170} WORLD_BATCH=4 WORLD_VAL=0
    DISTILL_STEPS=600 DISTILL_MIN=${DISTILL_MIN:-15} DISTILL_BATCH=4 DISTILL_VAL=0
    IDM_STEPS=10000 IDM_EPISODES=192 IDM_VAL_EPISODES=16 IDM_FRAMES=400
    ;;
  smoke)
    EPISODES=4 FRAMES=48 VAL_EPISODES=2
    TOK_STEPS=20 TOK_MIN=2 TOK_BATCH=4 DEC_STEPS=10 DEC_MIN=2 DEC_BATCH=4
    WORLD_STEPS=20 WORLD_MIN=2 WORLD_BATCH=4 WORLD_VAL=20
    DISTILL_STEPS=10 DISTILL_MIN=2 DISTILL_BATCH=2 DISTILL_VAL=10
    IDM_STEPS=10 IDM_EPISODES=2 IDM_VAL_EPISODES=2 IDM_FRAMES=72
    ;;
  *) echo "SCALE must be full, cpu or smoke, got '$SCALE'" >&2; exit 2 ;;
esac

mkdir -p "$RUN/logs"
wants() { [[ " $STAGES " == *" $1 "* ]]; }
stage() {  # stage NAME COMMAND...: run a command, its output also in $RUN/logs/NAME.log
  local name=$1; shift
  echo "== $name ($(date +%T))" >&2
  local start=$SECONDS
  "$@" 2>&1 | tee "$RUN/logs/$name.log"
  echo "== $name took $((SECONDS - start)) s" >&2
}

if wants data; then
  stage data $PYTHON datasets/generate.py --out "$DATA/voxel" --episodes $EPISODES --frames $FRAMES \
    --size $SIZE --workers "$WORKERS"
  stage data_val $PYTHON datasets/generate.py --out "$DATA/voxel_val" --episodes $VAL_EPISODES \
    --frames $FRAMES --size $SIZE --workers "$WORKERS" --seed 100000
fi

wants tokenizer && stage tokenizer $PYTHON -m training.train_tokenizer \
  --config training/configs/tokenizer_default.yaml \
  data.episodes="$DATA/voxel" validation.episodes="$DATA/voxel_val" train.out_dir="$RUN/tokenizer" \
  train.max_steps=$TOK_STEPS train.max_minutes=$TOK_MIN train.batch_size=$TOK_BATCH \
  train.num_workers=$((WORKERS > 8 ? 8 : WORKERS)) train.validate_every=0

encode() {  # encode SPLIT: its episodes into latent shards, in parallel jobs of 8 episodes each
  local jobs=$(( WORKERS > 8 ? 8 : WORKERS )) i pids=()
  local threads=$(( (WORKERS + jobs - 1) / jobs ))
  for ((i = 0; i < jobs; i++)); do
    OMP_NUM_THREADS=$threads $PYTHON datasets/encode_latents.py --episodes "$DATA/$1" \
      --tokenizer "$RUN/tokenizer/tokenizer" --out "$DATA/latents_$1" --episodes-per-shard 8 \
      --shard $i/$jobs &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
}
wants latents && for split in voxel voxel_val; do stage "latents_$split" encode $split; done
# A wider decoder on the tokenizer's frozen encoder: the same latents, sharper frames. The model
# directory ships it (the world stage takes it as its tokenizer).
wants decoder && stage decoder $PYTHON -m training.train_tokenizer \
  --config training/configs/decoder_default.yaml init_from="$RUN/tokenizer/tokenizer" \
  data.episodes="$DATA/voxel" validation.episodes="$DATA/voxel_val" train.out_dir="$RUN/decoder" \
  train.max_steps=$DEC_STEPS train.max_minutes=$DEC_MIN train.batch_size=$DEC_BATCH \
  train.num_workers=$((WORKERS > 8 ? 8 : WORKERS)) train.validate_every=0

wants world && stage world $PYTHON -m training.train --config training/configs/default.yaml \
  tokenizer="$RUN/decoder/tokenizer" data.shards="$DATA/latents_voxel" \
  validation.shards="$DATA/latents_voxel_val" validation.episodes="$DATA/voxel_val" \
  train.out_dir="$RUN/world" train.max_steps=$WORLD_STEPS train.max_minutes=$WORLD_MIN \
  train.batch_size=$WORLD_BATCH train.validate_every=$WORLD_VAL train.precision=$PRECISION

wants distill && stage distill $PYTHON -m training.distill --config training/configs/distill_default.yaml \
  teacher="$RUN/world/model" data.shards="$DATA/latents_voxel" \
  validation.shards="$DATA/latents_voxel_val" validation.episodes="$DATA/voxel_val" \
  train.out_dir="$RUN/distill" train.max_steps=$DISTILL_STEPS train.max_minutes=$DISTILL_MIN \
  train.batch_size=$DISTILL_BATCH train.validate_every=$DISTILL_VAL train.precision=$PRECISION \
  out="$MODEL_OUT"

# How far each input moves the view, fitted on the training episodes: the engine starts each moving
# frame from the last one moved so, noised to 0.45 (from pure noise the world model draws a still view),
# and each still frame from the rest frame, noised to 0.2 (from pure noise an idle scene drifts).
wants prior && stage prior $PYTHON -m training.fit_motion_prior --episodes "$DATA/voxel" \
  --model "$MODEL_OUT" --level 0.45 --still-level 0.2

if wants idm; then  # its own small episodes: the IDM keeps every frame in memory
  # the evaluation's held keys, and twice as much natural play (more worlds: the IDM generalises better)
  stage idm_data_controls $PYTHON datasets/generate.py --out "$DATA/idm_train/controls" \
    --episodes $IDM_EPISODES --frames $IDM_FRAMES --size 192x108 --workers "$WORKERS" --seed 200000 \
    --player controls
  stage idm_data_default $PYTHON datasets/generate.py --out "$DATA/idm_train/default" \
    --episodes $((2 * IDM_EPISODES)) --frames $IDM_FRAMES --size 192x108 --workers "$WORKERS" --seed 200000
  stage idm_data_val $PYTHON datasets/generate.py --out "$DATA/idm_val" --episodes $IDM_VAL_EPISODES \
    --frames $IDM_FRAMES --size 192x108 --workers "$WORKERS" --seed 300000
  # two IDMs, the second also given each frame pair's Lucas-Kanade products (model.flow_terms);
  # evaluation reads a clip with both (training.idm_ensemble)
  stage idm $PYTHON -m training.train_idm --config training/configs/idm_default.yaml \
    data.episodes="$DATA/idm_train" validation.episodes="$DATA/idm_val" train.out_dir="$RUN/idm" \
    train.max_steps=$IDM_STEPS out="$RUN/idm/idm"
  stage idm_flow $PYTHON -m training.train_idm --config training/configs/idm_default.yaml \
    data.episodes="$DATA/idm_train" validation.episodes="$DATA/idm_val" train.out_dir="$RUN/idm_flow" \
    train.max_steps=$IDM_STEPS model.flow_terms=true out="$RUN/idm_flow/idm"
  stage idm_ensemble $PYTHON -m training.idm_ensemble --out "$MODEL_OUT/idm" "$RUN/idm/idm" "$RUN/idm_flow/idm"
fi

echo "model directory: $MODEL_OUT (teacher: $RUN/world/model)" >&2
