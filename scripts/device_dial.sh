#!/usr/bin/env bash
# The dial issue's GPU job, time-boxed: adversarial fine-tuning of the fusion module, then its
# validation figures; everything it produces lands in $OUT (the device tool brings it back).
#
# Prepare here (the device machine reaches no package mirror), then run through the device tool with
# carry ["traindata.tar"] and a timeout that leaves a rerun:
#   dpfusion data prepare /work/traindata
#   python scripts/pack_photos.py /work/traindata traindata.tar      # JPEG q98 4:4:4, under the 64 MiB carry
#   bash scripts/device_dial.sh 420                                    # seconds of training
# (carry kodak/ too, a copy of ../shared/data/kodak, for the GPU decode timings per Kodak image)
set -euo pipefail
budget=${1:-420}
out=${OUT:-/tmp/out}
mkdir -p "$out" data
pip install -q -e . >/dev/null
dpfusion weights prepare >/dev/null
tar -xf traindata.tar -C data
for weight in 0.05 0.2; do
  timeout "$budget" dpfusion train fusion data/train -o "runs/gan$weight" --init dpfusion/weights/default \
    --model default --loss lpips_alex --latent-weight 0 --adversarial-weight "$weight" --critic-lr-scale 4 --image-mse-weight 3 \
    --steps 100000 --batch-size 8 --crop 256 --lr 1e-4 --warmup-steps 100 --ema-decay 0.995 \
    --checkpoint-every 500 --log-every 50 --device cuda || true
  python scripts/export_fusion.py "runs/gan$weight" "$out/gan$weight"
  cp "runs/gan$weight/log.csv" "$out/gan$weight/"
  dpfusion calibrate data/validation --fusion "$out/gan$weight" --threads 8
  python benchmarks/validation_realism.py data/validation shipped "$out/gan$weight" --rates 0,3,5 --threads 8 \
    | tee "$out/gan$weight/validation_realism.txt"
done
# GPU decode timings and the CPU/GPU pixel difference (issue 17): Kodak when carried as kodak/, else validation.
photos=data/validation
[ -d kodak ] && photos=kodak
timeout 150 python benchmarks/device_decode.py "$photos" --device cuda --threads 8 | tee "$out/device_decode.txt" || true
