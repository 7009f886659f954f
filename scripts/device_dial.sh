#!/usr/bin/env bash
# The GPU job, time-boxed: fine-tunings of the fusion module, then their validation figures and the GPU
# decode timings; everything it produces lands in $OUT (the device tool brings it back).
#
# Prepare here (the device machine reaches no package mirror), then run through the device tool with
# carry ["traindata.tar"] and a timeout that leaves a rerun:
#   dpfusion data prepare /work/traindata
#   python scripts/pack_photos.py /work/traindata traindata.tar      # JPEG q98 4:4:4, under the 64 MiB carry
#   bash scripts/device_dial.sh 180 tex2 gan0.2                        # seconds of training per job, then jobs
# Jobs: ganW, the dial issue's adversarial fine-tuning at weight W (its realistic end); texW, the same with the
# texture-statistics term at weight W instead of a critic (docs/METHOD.md); narrowN, the adapter
# pruned to N channels and fine-tuned (issue 17's decode speed; docs/METHOD.md, "A cheaper adapter").
# (carry kodak/ too, a copy of ../shared/data/kodak, for the GPU decode timings per Kodak image)
set -euo pipefail
budget=${1:-180}
shift || true
jobs=("${@:-tex2}")
out=${OUT:-/tmp/out}
mkdir -p "$out" data
pip install -q -e . >/dev/null
dpfusion weights prepare >/dev/null
tar -xf traindata.tar -C data
common=(--init dpfusion/weights/default --model default --loss lpips_alex --steps 100000
  --batch-size 8 --crop 256 --lr 1e-4 --warmup-steps 100 --ema-decay 0.995 --checkpoint-every 500 --log-every 50
  --device cuda)
for job in "${jobs[@]}"; do
  case "$job" in
    gan*) flags=(--latent-weight 0 --adversarial-weight "${job#gan}" --critic-lr-scale 4 --image-mse-weight 3) ;;
    tex*) flags=(--latent-weight 0 --texture-weight "${job#tex}" --image-mse-weight 12) ;;  # 12: best tau = 0 on validation; its dial needs a floored calibration (docs/METHOD.md)
    narrow*)
      [ -d runs/aux ] || dpfusion train aux data/train -o runs/aux --model default --loss lpips_alex --steps 600 \
        --batch-size 8 --crop 128 --lr 1e-4 --rate-weight 0 --mse-weight 30 --device cuda >/dev/null
      flags=(--aux runs/aux --latent-weight 0.2 --adapter "${job#narrow}" --image-mse-weight 3) ;;
    *) echo "unknown job $job (ganW, texW or narrowN)" >&2; exit 1 ;;
  esac
  timeout "$budget" dpfusion train fusion data/train -o "runs/$job" "${common[@]}" "${flags[@]}" || true
  python scripts/export_fusion.py "runs/$job" "$out/$job"
  cp "runs/$job/log.csv" "$out/$job/"
  dpfusion calibrate data/validation --fusion "$out/$job" --threads 8
  python benchmarks/validation_realism.py data/validation shipped "$out/$job" --rates 0,3,5 --threads 8 \
    | tee "$out/$job/validation_realism.txt"
done
# GPU decode timings and the CPU/GPU pixel difference (issue 17): Kodak when carried as kodak/, else validation.
photos=data/validation
[ -d kodak ] && photos=kodak
timeout 150 python benchmarks/device_decode.py "$photos" --device cuda --threads 8 | tee "$out/device_decode.txt" || true
