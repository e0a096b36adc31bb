"""``yolobench annotate``: a video (or image folder) with one variant's detections and a running FPS overlay."""

from __future__ import annotations

import argparse

HELP = "draw a built variant's detections on a video or image folder, with a live engine-FPS overlay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="catalogue variant, e.g. pruned_quant (must be built)")
    parser.add_argument("--engine", required=True, help="torch, onnxruntime, deepsparse or openvino")
    parser.add_argument("--source", required=True, metavar="VIDEO_OR_IMAGE_DIR",
                        help="a video file, or a folder of images")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="the video to write for a video source (.webm: VP9, plays in browsers; .mp4: mp4v, "
                             "desktop players only), a folder for an image folder")
    parser.add_argument("--profile", default="smoke", help="build profile the variant was built with")
    parser.add_argument("--data", default=None, help="the data.yaml the variant was built on (default: built-in)")
    parser.add_argument("--store", default=None, help="artifact store folder (default: ~/.cache/yolobench/store)")
    parser.add_argument("--conf", type=float, default=None, help="confidence threshold (default 0.25)")
    parser.add_argument("--imgsz", type=int, default=None,
                        help="model input size (default: the variant's first export size)")
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: all usable cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from yolobench import annotate, catalogue, engines
    from yolobench.errors import UserError
    from yolobench.store import Store

    # Cheap checks first: a typo must not cost a model load.
    catalogue.get_variant(args.variant)
    catalogue.get_profile(args.profile)
    engines.get(args.engine)
    conf = annotate.DEFAULT_CONF if args.conf is None else args.conf
    if not 0.0 <= conf < 1.0:
        raise UserError(f"--conf {conf:g}: a confidence threshold is in [0, 1)")
    source = annotate.open_source(args.source)
    out = annotate.check_output(source, args.out)

    artifact = annotate.load_built(args.variant, args.profile, args.data, Store(args.store))
    if artifact is None:
        build = f"yolobench build --variants {args.variant} --profile {args.profile}"
        if args.data:
            build += f" --data {args.data}"
        raise UserError(f"variant {args.variant} is not built for profile {args.profile}: run `{build}` first")
    detector = annotate.Detector.load(artifact, args.engine, threads=args.threads, imgsz=args.imgsz, conf=conf)
    progress = None if args.quiet else annotate.stderr_progress
    result = annotate.annotate(detector, source, out, progress=progress)
    fps = 1000.0 / result.engine_mean_ms if result.engine_mean_ms else float("inf")
    print(f"wrote {result.out}: {result.frames} {'frames' if source.is_video else 'images'}, {args.variant} on "
          f"{args.engine} ({detector.form}, {detector.imgsz} px), engine mean {result.engine_mean_ms:.2f} ms "
          f"({fps:.1f} FPS; an indication, not a benchmark)")
    return 0
