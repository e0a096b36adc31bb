"""One artifact from its resolved variant: the model (``builder.models``), saved, exported to every ONNX
form the engines need, checked (ONNX checker, no double quantization, DeepSparse compiles), measured
(mAP at each export size, sparsity, parameters) and described in ``meta.json``.

Must not: write anywhere but the store's work and output folders it is given.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import yaml

from yolobench import catalogue
from yolobench.builder.models import Progress, _from_checkpoint, _oneshot, _structure_recipe, _train
from yolobench.builder.resolving import Resolved, builtin_settings, eval_sets, library_versions
from yolobench.catalogue import ONESHOT
from yolobench.errors import UserError
from yolobench.recipes import RecipeLoader, epoch_scale, head_index, is_trial, recipe_path
from yolobench.store import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, MODEL_CFG_NAME, RECIPE_NAME, WEIGHTS_NAME,
                             Artifact, onnx_filename)

def _build_one(resolved: Resolved, data, parent: Artifact | None, work: Path, out: Path, say: Progress, *,
               teacher: Artifact | None = None) -> dict:
    """The meta dict of the artifact written into ``out``; ``teacher``: the built teacher of a variant
    that distills (``VariantSpec.teacher``), whose weights.pt the training learns from."""
    import torch

    from yolobench import modelio

    started = time.time()
    name, key, spec, profile = resolved.name, resolved.key, resolved.spec, resolved.profile
    profile_name = profile.name
    recipe_text, variables, data_yaml = resolved.recipe_text, dict(resolved.variables), resolved.data_yaml
    from yolobench.data import check_dataset

    info = check_dataset(data_yaml)
    names = {int(k): v for k, v in info.names.items()}
    cfg = resolved.network if resolved.network is not None else modelio.model_config(spec.model)
    torch.manual_seed(0)

    if resolved.given is not None:
        model, metrics, widths = _from_checkpoint(resolved, data_yaml, work, say)
        names = dict(resolved.given.names)
        saved_recipe, saved_vars = resolved.given.recipe, dict(resolved.given.recipe_variables)
    elif spec.kind == ONESHOT:
        model, metrics, widths = _oneshot(spec, profile, parent, recipe_text, variables, data_yaml, work, say)
        saved_recipe, saved_vars = recipe_text, variables
    else:
        model, metrics, widths = _train(spec, profile, parent, cfg, recipe_text, variables, data_yaml, work, say,
                                        teacher=teacher, distill=resolved.distill)
        # a transfer child inherits its parent's QAT structure: both recipes rebuild it on load
        saved_recipe, saved_vars = _structure_recipe(spec, parent, recipe_text, variables)

    if spec.quantized:
        unobserved = modelio.unobserved_quantizers(model)
        if unobserved:
            raise UserError(f"{recipe_path(spec)}: {len(unobserved)} quantization observers (e.g. "
                            f"{unobserved[0]}) never saw data under profile {profile_name!r}; start "
                            f"disabling observers at least one epoch after quantization starts")
    modelio.save_weights(out / WEIGHTS_NAME, model, cfg=cfg, nc=len(names), names=names,
                         recipe_text=saved_recipe, recipe_variables=saved_vars, widths=widths)
    (out / MODEL_CFG_NAME).write_text(yaml.safe_dump(cfg, sort_keys=False))
    if recipe_text:
        (out / RECIPE_NAME).write_text(recipe_text)

    forms = []
    for imgsz in profile.export_imgsz:
        say(f"[{name}] exporting ONNX at {imgsz} px")
        if spec.quantized:
            modelio.export_quantized(model, out, imgsz, deepsparse_name=onnx_filename(FORM_DEEPSPARSE, imgsz),
                                     qdq_name=onnx_filename(FORM_QDQ, imgsz))
            forms = [FORM_DEEPSPARSE, FORM_QDQ]
        else:
            dropped = modelio.export_fp32(model, out / onnx_filename(FORM_FP32, imgsz), imgsz)
            if dropped:
                say(f"[{name}] {dropped} channels pruned whole (zero for every input) left out of the graph")
            forms = [FORM_FP32]
    _check_onnx(out)
    deepsparse_support = _deepsparse_compiles(out, forms, profile.export_imgsz)

    eval_data = eval_sets(spec, profile, data) if resolved.given is None else _given_eval_sets(resolved, data)
    by_size = {}
    for imgsz, eval_yaml in eval_data.items():
        say(f"[{name}] measuring mAP at {imgsz} px on {eval_yaml}")
        by_size[str(imgsz)] = measure_accuracy(model, eval_yaml, imgsz)
    if not eval_data:  # a given source model whose classes are not the target's: no labels to judge it by
        by_size = {str(imgsz): {"map50": None, "map50_95": None, "source": _NOT_JUDGED} for imgsz in profile.export_imgsz}
    # `metrics` is the primary export size's (the first); every size's is in `metrics_by_imgsz`
    metrics = {**by_size[str(profile.export_imgsz[0])], **metrics}
    sparsity = modelio.sparsity_report(model)
    head = head_index(cfg)
    target = variables.get(spec.sparsity_target) if spec.sparsity_target else None
    if spec.sparsity_target and target is None and recipe_text:
        target = yaml.load(recipe_text, Loader=RecipeLoader).get(spec.sparsity_target)
    if target is None and parent is not None and recipe_text and "ConstantPruningModifier" in recipe_text:
        target = (parent.meta.get("sparsity") or {}).get("target")  # the zeros it holds are its parent's
    meta = {
        "variant": name,
        "description": spec.description,
        "profile": profile_name,
        "parent": {"variant": parent.name, "key": parent.key} if parent else None,
        # the variant it learned from while training, and how (absent for a variant without a teacher)
        **({"teacher": {"variant": teacher.name, "key": teacher.key, "distill": resolved.distill}}
           if teacher is not None else {}),
        "recipe": {"file": spec.recipe, "sha256": hashlib.sha256(recipe_text.encode()).hexdigest(),
                   "variables": variables, "text": recipe_text,
                   # where a trial recipe (YOLOBENCH_RECIPES) came from; absent for the repository's own
                   **({"trial_path": str(recipe_path(spec))} if is_trial(recipe_path(spec)) else {})}
        if recipe_text else None,
        "model": spec.model if resolved.network is None else resolved.root_weights["family"],
        # the user's checkpoint this ladder started from (absent for the catalogue's own models)
        **({"weights": {**resolved.root_weights, "given_epochs": resolved.given_epochs}
            if resolved.given is not None else resolved.root_weights} if resolved.root_weights else {}),
        "dataset": {"data_yaml": str(data_yaml), "hash": info.content_hash, "domain": spec.domain,
                    "generator_domain": None if (spec.domain == "target" and data is not None)
                    else builtin_settings(spec, catalogue.get_profile(profile_name))[0],
                    "names": names, "train_images": info.train_images, "val_images": info.val_images,
                    "eval_data_yaml": {str(k): str(v) for k, v in eval_data.items()}},
        "quantized": spec.quantized,
        "forms": forms,
        "export_imgsz": list(profile.export_imgsz),
        "train_imgsz": profile.train_imgsz,
        "versions": library_versions(),
        "sparsity": {**sparsity, "target": target,
                     "prunable": _prunable_sparsity(sparsity["per_layer"], head) if target is not None else None},
        "parameters": modelio.parameter_count(model),
        # a thinned network (VariantSpec.thin, or a parent's): channels kept per narrowed layer
        **({"channel_widths": widths} if widths else {}),
        "deepsparse_fraction_of_supported_ops": deepsparse_support,
        "metrics": metrics,
        "metrics_by_imgsz": by_size,
        "epoch_scale": epoch_scale(),
        "build_seconds": round(time.time() - started, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta["file_sizes"] = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    return meta


def _pruned_layer(head: int):
    """Layers the pruning recipes prune (model.1 .. the layer before Detect: convs; the head's cv2/cv3
    3x3 convs), by canonical name: the "prunable" set whose measured sparsity must match the target."""
    import re

    return re.compile(rf"^model\.(?:(?:{'|'.join(str(i) for i in range(head - 1, 0, -1))})\..*conv|"
                      rf"{head}\.cv[23]\.\d\.[01]\.conv)\.weight$")


def _prunable_sparsity(per_layer: dict, head: int = 24) -> float | None:
    pruned = _pruned_layer(head)
    values = [v for k, v in per_layer.items() if pruned.match(k)]
    return round(sum(values) / len(values), 4) if values else None


_NOT_JUDGED = "not measured: the given model's classes are not the target data's, and its own data is unknown"


def _given_eval_sets(resolved: Resolved, data) -> dict:
    """Where a given checkpoint is judged: the target data (as the dense rung would be), if it has the
    checkpoint's classes; none otherwise (a given sparse source model trained on other classes)."""
    from yolobench.data import check_dataset

    target = catalogue.get_variant(catalogue.WEIGHTS_ROOT)
    sets = eval_sets(target, resolved.profile, data)
    names = {int(k): v for k, v in check_dataset(resolved.data_yaml, decode_images=False).names.items()}
    return sets if names == dict(resolved.given.names) else {}


def measure_accuracy(model, data_yaml: Path, imgsz: int) -> dict:
    """mAP of the PyTorch model through yolobench's own evaluation path (same as every engine)."""
    from yolobench.evaluate import evaluate, torch_runner
    from yolobench.modelio import RawHead, disable_observers

    model = model.eval()
    disable_observers(model)
    return evaluate(torch_runner(RawHead(model).eval()), data_yaml, imgsz)


def _check_onnx(out: Path) -> None:
    import onnx

    from yolobench.modelio import double_quantizations

    for path in sorted(out.glob("*.onnx")):
        onnx.checker.check_model(str(path))
        chains = double_quantizations(onnx.load(str(path)))
        if chains:
            raise UserError(
                f"{path.name}: {len(chains)} tensors are quantized twice in a row (first at "
                f"{chains[0][1]}); ONNX Runtime merges such pairs and would disagree with the other "
                "engines. Give the module type producing them `exclude_module_types` in the recipe's "
                "QuantizationModifier (see recipes/pruned_quant.yaml)")


# A compile still running after this long is taken as hung (the probe's child is stopped, the build refused).
DEEPSPARSE_PROBE_TIMEOUT_S = 900.0
_DEEPSPARSE_PROBE = (
    "import sys\n"
    "from deepsparse import compile_model\n"
    "engine = compile_model(sys.argv[1], batch_size=1, num_cores=1)\n"
    "print('FRACTION', engine.fraction_of_supported_ops)\n"
)


def _deepsparse_compiles(out: Path, forms: list[str], sizes) -> dict | None:
    """Compile each DeepSparse-bound ONNX in a child process; fail the build if DeepSparse crashes.

    DeepSparse aborts the whole process on graphs its compiler rejects (it cannot be caught), so an
    artifact that would crash every later test or benchmark is refused here, with the reason.
    Returns {file: fraction_of_supported_ops}, or None where deepsparse is not installed.
    """
    import importlib.util

    from yolobench import children

    if importlib.util.find_spec("deepsparse") is None:
        return None
    form = FORM_DEEPSPARSE if FORM_DEEPSPARSE in forms else FORM_FP32
    result = {}
    for imgsz in sizes:
        path = out / onnx_filename(form, imgsz)
        try:
            proc = children.run([sys.executable, "-c", _DEEPSPARSE_PROBE, str(path)], capture_output=True,
                                timeout=DEEPSPARSE_PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise UserError(f"DeepSparse did not compile {path.name} within {DEEPSPARSE_PROBE_TIMEOUT_S:g} s (the "
                            "child process was stopped; nothing was added to the store): a machine this busy or "
                            "this slow cannot check the artifact; rerun on an idle machine, or uninstall deepsparse "
                            "to skip the check") from None
        fraction = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FRACTION")]
        if proc.returncode != 0 or not fraction:
            detail = next((line for line in (proc.stderr or "").splitlines() if "Assertion" in line
                           or "Error" in line), f"exit status {proc.returncode}")
            raise RuntimeError(f"DeepSparse cannot compile {path.name}: {detail.strip()}")
        result[path.name] = float(fraction[0])
    return result
