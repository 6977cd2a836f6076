#!/usr/bin/env bash
# One prepared run of citytrack's GPU paths, sized for a short lease of one GPU:
#
#   OUT=gpu_out bash benchmarks/gpu_check.sh            # a CUDA machine, ~9 minutes
#   SMOKE=1 DEVICE=cpu OUT=/tmp/gpu_smoke bash benchmarks/gpu_check.sh   # the same steps, tiny, on a CPU
#
# (run from the repository root; DATA is the folder the synthetic worlds render into, default data/;
# PY the Python that has citytrack's dependencies, default python3.) A machine without internet that
# has torch, Lightning, timm and OpenCV needs these as cp312 wheels beside the repository, installed
# with `pip install --no-index --no-deps --target /tmp/site .whl/*.whl` and PYTHONPATH=/tmp/site:
# hydra-core 1.3.8, omegaconf 2.3.1, antlr4-python3-runtime 4.9.3 (`pip wheel` builds it from its
# sdist), kornia 0.9.0, kornia_rs 0.2.0, lap 0.5.13, motmetrics 1.4.0, xmltodict 1.0.4, pycocotools 2.0.11.
#
# 1. detector throughput (training step and batched 1080p inference) with bf16 + channels_last, and
#    the fp32 / NCHW peers measured in the same run (`python -m citytrack.bench detector`);
# 2. ReID training and extraction throughput (`python -m citytrack.bench reid`);
# 3. the multi-camera runner batched over 4 cameras vs camera by camera, with pose, on a 1080p scene
#    (`python -m citytrack.bench scene`);
# 4. what TRAIN names (default detector), each for about TRAIN_S seconds with `trainer.max_time` as
#    the hard stop: `detector` = the full-size detector (`experiment=detector_synthetic_gpu`), its epoch
#    count from step 1's training throughput (half of it, for loading and validation), exported as an
#    fp16 inference checkpoint; `pose` = the GPU keypoint network (`experiment=pose_synthetic`) for
#    POSE_EPOCHS epochs, exported (fp16) for the held-out AP on a CPU (checkpoints/README.md, Pose).
# Results land in $OUT (at most 8 files with one of the two trainings, for a device's way back):
# summary.txt, bench.jsonl (one JSON object per benchmark), bench.log, train.log, metrics_<what>.csv and
# the checkpoint (split into 15 MiB parts when larger: `cat detector_synthetic_gpu.pt.part-* > detector_synthetic_gpu.pt`,
# likewise pose_synthetic_gpu.ckpt). A failed step is logged and the next one runs.
set -u
OUT=${OUT:?set OUT to the results folder}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
TRAIN_S=${TRAIN_S:-210}
TRAIN=${TRAIN:-detector}    # what step 4 trains: detector, pose, "detector pose" (both: more than one lease's minutes), none
POSE_EPOCHS=${POSE_EPOCHS:-6}
POSE_WORKERS=${POSE_WORKERS:-12}
PY=${PY:-python3}
DATA=${DATA:-data}
WORK=${WORK:-$(mktemp -d)}  # what does not go back: the training run, the benchmarks' own JSON files
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
SUMMARY="$OUT/summary.txt"

log() { echo "[$(date +%T)] $*" | tee -a "$SUMMARY"; }
# step NAME CMD...: output to bench.log, the benchmark's one-line JSON result (if any) to bench.jsonl
step() {
    local name=$1 t0=$SECONDS rc
    shift
    log "$name: $*"
    "$@" >"$OUT/step.out" 2>>"$OUT/bench.log"
    rc=$?
    cat "$OUT/step.out" >>"$OUT/bench.log"
    grep -h '^{"benchmark"' "$OUT/step.out" | sed "s/^{/{\"step\": \"$name\", /" >>"$OUT/bench.jsonl"
    rm -f "$OUT/step.out"
    log "$name: exit $rc after $((SECONDS - t0)) s"
    return $rc
}
# add_json NAME FILE: a benchmark's --json/--out file, as one line of bench.jsonl
add_json() {
    $PY -c "import json, sys; print(json.dumps({'step': sys.argv[1], **json.load(open(sys.argv[2]))}))" "$1" "$2" \
        >>"$OUT/bench.jsonl" 2>>"$OUT/bench.log"
}

if [ "$SMOKE" = 1 ]; then
    DET="--batch 2 --img-size 256 --steps 1 --warmup 1 --frame-size 320x180"
    DET_TRAIN="--batch 2 --img-size 256 --steps 1 --warmup 1 --frame-size 320x180"
    REID="--p 2 --k 2 --steps 1 --warmup 1 --frames 1 --boxes 4 --batch 8"
    SCENE="--width 320 --height 180 --frames 6 --people 4 --warmup 1 --repeats 1"
    TRAIN_OVERRIDES="data.train.0.overrides.scenes=1 data.num_workers=2
        data.batch_size=2 data.val_batch_size=2 trainer.limit_train_batches=2 trainer.limit_val_batches=2
        trainer.check_val_every_n_epoch=1 trainer=cpu"
    FRAMES_PER_EPOCH=4
    TINY_WORLD="{scenes:1,cameras:2,people:6,frames:12,width:320,height:192,progress:false,pose:{stride:2,min_height:20,min_keypoints:3,test_fraction:0.5}}"
    POSE_TRAINER=cpu
    POSE_OVERRIDES="++data.synth=$TINY_WORLD data.train_synth=null data.extra_train=null data.batch_size=4 data.eval_batch_size=8
        model.net.backbone=resnet18 model.net.feature_index=-3 model.net.width=16 model.input_size=[64,32]
        trainer.limit_train_batches=2 trainer.limit_val_batches=2 trainer.limit_test_batches=1 trainer.log_every_n_steps=1"
    POSE_EPOCHS=1
    POSE_WORKERS=0
else
    DET="--batch 16 --img-size 640 --steps 20 --warmup 5 --frame-size 1920x1080"
    DET_TRAIN="--batch 64 --img-size 416 --steps 20 --warmup 5 --frame-size 1920x1080"
    REID="--backbone osnet_x1_0 --p 32 --k 4 --steps 20 --warmup 5 --frames 16 --boxes 32"
    SCENE="--width 1920 --height 1080 --frames 60 --warmup 5 --repeats 2"
    TRAIN_OVERRIDES=""
    POSE_OVERRIDES=""
    POSE_TRAINER=gpu
    FRAMES_PER_EPOCH=12288  # 128 scenes x 4 cameras x 48 frames, every 2nd
fi

log "machine: $(nvidia-smi -L 2>/dev/null | head -1) $(nproc) CPUs; shm $(df -h /dev/shm 2>/dev/null | awk 'NR==2 {print $2}')"
$PY -c "import torch, pytorch_lightning, timm, kornia; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', pytorch_lightning.__version__, 'timm', timm.__version__, 'kornia', kornia.__version__)" 2>&1 | tee -a "$SUMMARY"

# 1. detector: the paths' own settings, then each setting's peer
step det_bf16_nhwc $PY -m citytrack.bench detector --device "$DEVICE" $DET
step det_bf16_nchw $PY -m citytrack.bench detector --device "$DEVICE" $DET --no-channels-last
step det_fp32_nhwc $PY -m citytrack.bench detector --device "$DEVICE" $DET --precision fp32
step det_train_crops $PY -m citytrack.bench detector --device "$DEVICE" $DET_TRAIN
step det_cpu_ckpt $PY -m citytrack.bench detector --device "$DEVICE" $DET --ckpt checkpoints/detector_synthetic_cpu.pt --img-size 416

# 2. ReID
step reid $PY -m citytrack.bench reid --device "$DEVICE" $REID --out "$WORK/reid.json" && add_json reid "$WORK/reid.json"

# 3. the runner over 4 cameras with pose (ReID and keypoints on every box), batched vs sequential
step scene_pose $PY -m citytrack.bench scene --device "$DEVICE" $SCENE --override pose=synthetic --data "$DATA" --json "$WORK/scene_pose.json" \
    && add_json scene_pose "$WORK/scene_pose.json"

# 4. training for about TRAIN_S seconds each, in the order TRAIN names them
MAX_TIME=$(printf '00:00:%02d:%02d' $(((TRAIN_S + 90) / 60)) $(((TRAIN_S + 90) % 60)))
# split FILE: parts of at most 15 MiB for the way back (cat FILE.part-* > FILE)
split_big() {
    if [ -f "$1" ] && [ "$(stat -c %s "$1")" -gt 15728640 ]; then split -b 15M "$1" "$1.part-" && rm "$1"; fi
}
train_detector() {
    # epochs from the measured training rate (the last JSON line of det_train_crops)
    local EPOCHS t0 rc CKPT RUN_DIR="$WORK/detector_synthetic_gpu_run"
    EPOCHS=$($PY - "$OUT/bench.jsonl" "$TRAIN_S" "$FRAMES_PER_EPOCH" "$SMOKE" <<'EOF2'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ips = [r["train_images_per_s"] for r in rows if r.get("step") == "det_train_crops"]
seconds, per_epoch, smoke = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
print(1 if smoke else max(4, min(60, int(0.5 * (ips[-1] if ips else 500.0) * seconds / per_epoch))))
EOF2
)
    EPOCHS=${EPOCHS:-8}
    log "train detector: $EPOCHS epochs of $FRAMES_PER_EPOCH frames, stop at $MAX_TIME at the latest"
    run_detector() {
        $PY train.py experiment=detector_synthetic_gpu logger=csv hydra.run.dir="$RUN_DIR" paths.data_dir="$DATA" trainer.max_time="$MAX_TIME" \
            +callbacks.progress_bar.refresh_rate=50 $TRAIN_OVERRIDES "$@" >>"$OUT/train.log" 2>&1
    }
    t0=$SECONDS
    run_detector trainer.max_epochs="$EPOCHS"
    rc=$?
    log "train detector: exit $rc after $((SECONDS - t0)) s"
    if [ $rc != 0 ] && [ $((SECONDS - t0)) -lt 150 ]; then  # an early failure (loader workers, shared memory): once more in-process
        log "train detector: again with data.num_workers=0, $(( (EPOCHS + 4) / 5 )) epochs"
        t0=$SECONDS
        run_detector trainer.max_epochs=$(( (EPOCHS + 4) / 5 )) data.num_workers=0 data.pin_memory=false
        log "train detector: exit $? after $((SECONDS - t0)) s"
    fi
    grep -h -E "rendered|Epoch [0-9]+: 100%|val/mAP" "$OUT/train.log" | tail -3 | tee -a "$SUMMARY"
    cp "$(ls "$RUN_DIR"/csv/version_*/metrics.csv 2>/dev/null | tail -1)" "$OUT/metrics_detector.csv" 2>/dev/null
    CKPT=$(ls "$RUN_DIR"/checkpoints/epoch_*.ckpt 2>/dev/null | tail -1)
    CKPT=${CKPT:-$RUN_DIR/checkpoints/last.ckpt}
    if [ -f "$CKPT" ]; then
        log "export: $CKPT"
        $PY -m citytrack.models.detector.export ckpt="$CKPT" out="$OUT/detector_synthetic_gpu.pt" >>"$OUT/bench.log" 2>&1
        split_big "$OUT/detector_synthetic_gpu.pt"
        # the trained checkpoint's inference rate on the same frames as step 1
        step det_gpu_ckpt $PY -m citytrack.bench detector --device "$DEVICE" $DET --ckpt "$CKPT"
    fi
}
train_pose() {
    # experiment=pose_synthetic (resnet18 + skips, 256x128, many short scenes): POSE_EPOCHS epochs,
    # validated once at the end; the held-out AP is measured afterwards on a CPU from the exported file
    local t0 rc RUN_DIR="$WORK/pose_synthetic_run"
    log "train pose: $POSE_EPOCHS epochs, stop at $MAX_TIME at the latest"
    t0=$SECONDS
    $PY train.py experiment=pose_synthetic trainer="$POSE_TRAINER" logger=csv hydra.run.dir="$RUN_DIR" paths.data_dir="$DATA" \
        trainer.max_time="$MAX_TIME" trainer.max_epochs="$POSE_EPOCHS" trainer.check_val_every_n_epoch="$POSE_EPOCHS" \
        data.num_workers="$POSE_WORKERS" +callbacks.progress_bar.refresh_rate=50 $POSE_OVERRIDES >>"$OUT/train.log" 2>&1
    rc=$?
    log "train pose: exit $rc after $((SECONDS - t0)) s"
    grep -h -E "pose train set|Epoch [0-9]+: 100%|val/AP|test/AP " "$OUT/train.log" | tail -4 | tee -a "$SUMMARY"
    cp "$(ls "$RUN_DIR"/csv/version_*/metrics.csv 2>/dev/null | tail -1)" "$OUT/metrics_pose.csv" 2>/dev/null
    if [ -f "$RUN_DIR/checkpoints/last.ckpt" ]; then
        $PY -m citytrack.models.pose.export ckpt="$RUN_DIR/checkpoints/last.ckpt" out="$OUT/pose_synthetic_gpu.ckpt" half=true \
            >>"$OUT/bench.log" 2>&1 && log "export: pose_synthetic_gpu.ckpt"
        split_big "$OUT/pose_synthetic_gpu.ckpt"
    fi
}
for what in $TRAIN; do
    case $what in
        detector) train_detector ;;
        pose) train_pose ;;
        none) ;;
        *) log "TRAIN: unknown '$what' (detector, pose or none)" ;;
    esac
done
ls -la "$OUT" | tee -a "$SUMMARY"
