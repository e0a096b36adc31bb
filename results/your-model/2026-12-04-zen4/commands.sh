#!/usr/bin/env bash
# Issue "your model": a checkpoint ultralytics trained on a dataset the catalogue never trains on, through
# the ladder, the engines, parity and the gate, then its ONNX export through `bench --model`.
# Run from the checkout with the project's environment active; writes its logs beside this file.
# The checkpoint: make_user_model.py (yolov8n, 30 epochs at 160 px on the generator's source look, seed 5).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CKPT=${CKPT:?path of best.pt}
DATA=${DATA:?path of its data.yaml}
OUT=${OUT:-/tmp/yb/demo}
step() { local name=$1; shift; echo "\$ $*" >"$HERE/$name.log"; local t0=$(date +%s)
         "$@" >>"$HERE/$name.log" 2>&1; local rc=$?
         echo "exit $rc, $(( $(date +%s) - t0 )) s" | tee -a "$HERE/$name.log"; }
step build yolobench build --profile smoke --weights "$CKPT" --data "$DATA" --record "$HERE/build-record.json"
step parity pytest tests/test_parity_variants.py --yb-profile smoke --yb-weights "$CKPT" --yb-data "$DATA" -q -p no:cacheprovider
step bench yolobench bench --profile smoke --weights "$CKPT" --data "$DATA" --engines deepsparse,openvino,openvino_nncf,onnxruntime,torch --out "$OUT/run-weights.json"
step gate yolobench gate --current "$OUT/run-weights.json" --baseline auto
step export yolo export model="$CKPT" format=onnx imgsz=160 simplify=False
step bench-model yolobench bench --model "${CKPT%.pt}.onnx" --data "$DATA" --out "$OUT/run-model.json"
step gate-model yolobench gate --current "$OUT/run-model.json" --baseline "$OUT/run-model.json"
