"""The file a user deploys: which file each cell's engine loaded, which one a deployment loads, and that
file's gzip size, computed from the artifact the cell records in the store (looked up, never built)."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Mapping

from yolobench import catalogue, engines
from yolobench.errors import UserError
from yolobench.report.cells import TORCH_ENGINE, Progress, ordered_cells
from yolobench.report.formats import md_text
from yolobench.runfile import Cell, Run
from yolobench.store import FORM_FP32, FORMS, WEIGHTS_NAME, onnx_filename

# Compressed size: what the blog's source publishes beside each model (sparse weights compress). gzip
# at level 9 in a gzip wrapper without name or time stamp: the same bytes for the same file every time.
GZIP_LEVEL = 9
_GZIP_WBITS = 31  # zlib: deflate in a gzip wrapper (mtime 0, no file name)


def loaded_file(cell: Cell) -> str | None:
    """The name (inside its artifact) of the file the cell's engine loaded: the session's ``model_path``
    for ONNX engines, the weights for PyTorch; from the form and size where the run recorded no session."""
    sessions = cell.extra.get("session")
    for record in sessions if isinstance(sessions, list) else [sessions]:
        if isinstance(record, Mapping) and record.get("model_path"):
            return PurePath(str(record["model_path"])).name
    if cell.engine == TORCH_ENGINE or cell.form == engines.FORM_TORCH:
        return WEIGHTS_NAME
    if cell.form in FORMS:
        return onnx_filename(cell.form, cell.imgsz)
    return None


def _engine_made_file(cell: Cell) -> Path | None:
    """The file the cell's session loaded when the engine made it outside the store (recorded by its full
    path, still there, and of the size the run recorded), else None."""
    sessions = cell.extra.get("session")
    for record in sessions if isinstance(sessions, list) else [sessions]:
        if isinstance(record, Mapping) and record.get("model_path"):
            path = Path(str(record["model_path"]))
            store_file = any(part.startswith(f"{cell.variant}-") for part in path.parts[-3:-1])
            if (path.is_absolute() and not store_file and path.is_file() and cell.model_size_bytes is not None
                    and path.stat().st_size == cell.model_size_bytes):
                return path
    return None


def deployment_file(variant: str, engine: str, imgsz: int) -> str | None:
    """The file a deployment of ``variant`` on ``engine`` loads: the weights on PyTorch; the engine's
    preferred quantized graph for a quantized variant (DeepSparse: the converted INT8 ONNX; ONNX Runtime,
    OpenVINO: the QDQ ONNX); the FP32 ONNX otherwise. None for a variant or engine this checkout lacks."""
    try:
        spec, runtime = catalogue.get_variant(variant), engines.get(engine)
    except UserError:
        return None
    if engine == TORCH_ENGINE:
        return WEIGHTS_NAME
    return onnx_filename(runtime.preferred_forms[0] if spec.quantized else FORM_FP32, imgsz)


def gzip_size(path: str | os.PathLike, chunk: int = 1 << 20) -> int:
    """Bytes of the file after ``gzip -9`` (no name, time stamp 0: the same for the same file every time)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    total = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            total += len(compressor.compress(block))
    return total + len(compressor.flush())


@dataclass(frozen=True)
class DeployedFile:
    file: str | None
    compressed_bytes: int | None
    missing: str | None = None  # why compressed_bytes is None


def deployed_files(run: Run, store, say: Progress | None = None) -> dict[str, DeployedFile]:
    """Per cell: the file its engine loaded and that file's gzip size, read from the artifact the cell
    records (``artifact_key``) in ``store`` (looked up, never built; each file compressed once)."""
    say = say or (lambda message: None)
    artifacts: dict[tuple[str, str], Any] = {}
    compressed: dict[Path, int] = {}
    result = {}
    for cell in ordered_cells(run):
        file, key = loaded_file(cell), cell.extra.get("artifact_key")
        missing, size = None, None
        outside = _engine_made_file(cell)
        if outside is not None:  # a file the engine made from the artifact (openvino_nncf's INT8 model)
            if outside not in compressed:
                say(f"compressing {outside}")
                compressed[outside] = gzip_size(outside)
            result[cell.name] = DeployedFile(file, compressed[outside], None)
            continue
        if file is None:
            missing = "the run does not record which file the engine loaded"
        elif not key:
            missing = "the run does not record which artifact the cell measured (no `artifact_key`)"
        else:
            if (cell.variant, str(key)) not in artifacts:
                artifacts[cell.variant, str(key)] = store.get(cell.variant, str(key), deep=False)
            artifact = artifacts[cell.variant, str(key)]
            path = artifact.path / file if artifact is not None else None
            if artifact is None:
                missing = f"the store ({store.root}) does not have artifact {cell.variant}-{key}"
            elif not path.is_file():
                missing = f"artifact {cell.variant}-{key} in the store has no {md_text(file)}"
            elif cell.model_size_bytes is not None and path.stat().st_size != cell.model_size_bytes:
                missing = (f"{md_text(file)} of artifact {cell.variant}-{key} is {path.stat().st_size} bytes in the store, "
                           f"the run recorded {cell.model_size_bytes}: not the file measured")
            else:
                if path not in compressed:
                    say(f"compressing {cell.variant}-{key}/{file}")
                    compressed[path] = gzip_size(path)
                size = compressed[path]
        result[cell.name] = DeployedFile(file, size, missing)
    return result
