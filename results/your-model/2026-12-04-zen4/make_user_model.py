"""A user's model for the demo: yolov8n trained by ultralytics' own trainer on a dataset the suite never
trains on (the generator's source look, seed 5), 160 px."""
import os, sys, time
os.environ["YOLO_OFFLINE"] = "1"
from yolobench import offline; offline.apply()
from yolobench.data import builtin_dataset
data = builtin_dataset("source", seed=5, train=448, val=48, imgsz=160)
print("data", data, flush=True)
from ultralytics import YOLO
t = time.time()
YOLO("yolov8n.yaml").train(data=str(data), epochs=int(sys.argv[1]), imgsz=160, batch=16, workers=0, device="cpu", plots=False,
                           project="/tmp/yb/demo/runs", name="user", exist_ok=True, amp=False, verbose=False,
                           optimizer="AdamW", lr0=0.003, warmup_epochs=0, close_mosaic=3, seed=0, deterministic=True)
print("train seconds", round(time.time() - t), flush=True)
