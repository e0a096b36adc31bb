"""Options every command spells the same way: ``--profile`` (its choices in the help), ``--engines``
(``a,b`` or ``a b``), ``--quiet``, ``--json``."""

from __future__ import annotations

import argparse


def profile_help(what: str) -> str:
    from yolobench import catalogue

    return f"{what}: {', '.join(catalogue.PROFILES)}"


def add_profile(parser: argparse.ArgumentParser, *, default: str | None = "smoke",
                what: str = "build profile") -> None:
    parser.add_argument("--profile", default=default, metavar="PROFILE",
                        help=profile_help(what) + (f" (default: {default})" if default else ""))


def add_engines(parser: argparse.ArgumentParser, *, what: str = "engines to run, in this order") -> None:
    from yolobench import engines

    parser.add_argument("--engines", nargs="+", default=None, metavar="ENGINE",
                        help=f"{what}: comma- or space-separated, from {', '.join(engines.engine_names())} "
                             "(default: all)")


def engine_list(values) -> list[str]:
    """``--engines`` as given (``['a,b']`` or ``['a', 'b']``) or None -> checked names, in order."""
    from yolobench import bench

    return bench.parse_engines(values)


def add_quiet(parser: argparse.ArgumentParser, what: str = "no progress lines") -> None:
    parser.add_argument("--quiet", action="store_true", help=what)


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout (for scripts)")


# A .pt is a pickle: say how it is read wherever a command takes one.
WEIGHTS_SAFETY = ("A .pt is a pickle, which can run code when it is loaded: yolobench reads it without running "
                  "any (its own format as plain tensors, an ultralytics checkpoint through an allowlist of "
                  "ultralytics' and torch's layer classes) and refuses a file that needs anything else; an ONNX "
                  "export is the safe way to hand over a model")


def add_weights(parser: argparse.ArgumentParser) -> None:
    """``--weights`` / ``--source-weights``: a ladder that starts from the user's own model."""
    parser.add_argument("--weights", default=None, metavar="PATH.pt",
                        help="start the ladder from your model: an ultralytics detection checkpoint (best.pt "
                             "from `yolo train`: YOLOv5u, YOLOv8, YOLO11) or a yolobench artifact's weights.pt; "
                             "dense is that model, oneshot/pruned/pruned_quant derive from it, rungs of other "
                             "networks are skipped with the reason. Its classes must be --data's. "
                             + WEIGHTS_SAFETY)
    parser.add_argument("--source-weights", default=None, metavar="PATH.pt",
                        help="a pruned+quantized model (a yolobench pruned_quant/source_pq artifact's weights.pt) "
                             "that replaces source_pq, so transfer fine-tunes it onto --data")


def weights_args(args) -> dict:
    """The builder's keyword arguments for --weights / --source-weights (paths resolved)."""
    from pathlib import Path

    def path(value):
        return None if value is None else Path(value).expanduser().resolve()

    return {"weights": path(getattr(args, "weights", None)),
            "source_weights": path(getattr(args, "source_weights", None))}
