"""Fetching the manifest's models from upstream or a local mirror, verified, and preparing derived files.

What the manifest says (entries, names, where files are, checksums) is :mod:`edgepose.manifest`'s.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from edgepose.config.schema import ModelConfig
from edgepose.errors import EdgePoseError, ModelError
from edgepose.inference.families.posenet.prepare import strip_posenet_decoder
from edgepose.manifest import ModelSpec, model_names, verify_file

MIRROR_ENV = "EDGEPOSE_MODEL_MIRROR"
#: What `models fetch` without names fetches: the default model.
DEFAULT_FETCH = (ModelConfig.name,)
_CHUNK = 1 << 16


#: How a prepared file is derived from its upstream source (the manifest's ``prepare``), and what to say.
PREPARERS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "strip-posenet-decoder": (strip_posenet_decoder, "PosenetDecoderOp removed"),
}


Progress = Callable[[str, int, int], None]


def _copy_stream(src: object, dst: object, name: str, total: int, progress: Progress) -> None:
    done = 0
    read = src.read  # type: ignore[attr-defined]
    write = dst.write  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        write(chunk)
        done += len(chunk)
        progress(name, done, total)


def durable_replace(tmp: Path, target: Path) -> None:
    """Rename a written, fsynced file over ``target``, then sync the folder.

    A power cut then leaves the old file or the new one, never a torn or missing one.
    """
    os.replace(tmp, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _obtain(spec: ModelSpec, out: object, mirror: Path | None, progress: Progress) -> str:
    """Write the upstream file of ``spec`` to ``out``, from the mirror or downloaded; say which."""
    if mirror is not None:
        places = [mirror / spec.source, mirror / spec.file] if spec.source else [mirror / spec.file]
        source = next((p for p in places if p.is_file()), None)
        if source is None:
            raise EdgePoseError(f"{spec.file} is not in the mirror {mirror}")
        with source.open("rb") as src:
            _copy_stream(src, out, spec.file, source.stat().st_size, progress)
        return f"copied from {mirror}"
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or spec.bytes or 0)
            _copy_stream(resp, out, spec.file, total, progress)
    except (urllib.error.URLError, OSError) as exc:
        raise EdgePoseError(
            f"cannot download {spec.file} from {spec.url}: {exc}; on an offline machine use "
            f"--from DIR or {MIRROR_ENV}=DIR"
        ) from exc
    return "downloaded"


def _prepare(spec: ModelSpec, path: Path) -> str:
    """Check the upstream file at ``path`` and rewrite it in place into the prepared file; say what was done."""
    source = spec.source_spec()
    problem = verify_file(source, path)
    if problem is not None:
        raise EdgePoseError(f"{source.file} failed verification ({problem}); nothing was installed")
    recipe = PREPARERS.get(spec.prepare)
    if recipe is None:
        raise EdgePoseError(f"{spec.file}: unknown preparation {spec.prepare!r} in the manifest")
    transform, what = recipe
    prepared = transform(path.read_bytes())
    with path.open("wb") as out:
        out.write(prepared)
        out.flush()
        os.fsync(out.fileno())
    problem = verify_file(spec, path)
    if problem is not None:
        raise EdgePoseError(
            f"{spec.file} prepared from {source.file} does not match the manifest ({problem}; the manifest's "
            f"was written with {spec.prepared_with or 'other library versions'}); nothing was installed"
        )
    return f"{what} from {source.file}"


def fetch_one(spec: ModelSpec, models_dir: Path, mirror: Path | None, progress: Progress) -> str:
    """Put one verified model file into ``models_dir``; keep a good existing copy.

    A prepared entry fetches and verifies its upstream source, prepares it (see :data:`PREPARERS`) and
    verifies the result; only the prepared file is kept.

    Returns:
        What was done: ``present``, ``copied from MIRROR`` or ``downloaded`` (and how it was prepared).

    Raises:
        EdgePoseError: The file could not be obtained or failed verification (nothing is left behind).
    """
    target = models_dir / spec.file
    if verify_file(spec, target) is None:
        return "present, verified"
    models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.file}.", suffix=".part", dir=models_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            how = _obtain(spec.source_spec() if spec.prepare else spec, out, mirror, progress)
            out.flush()
            os.fsync(out.fileno())  # on the SD card before it takes the model's name
        if spec.prepare:
            how += ", " + _prepare(spec, tmp)
        problem = verify_file(spec, tmp)
        if problem is not None:
            raise EdgePoseError(f"{spec.file} failed verification ({problem}); nothing was installed")
        tmp.chmod(0o644)
        durable_replace(tmp, target)
        return how
    finally:
        tmp.unlink(missing_ok=True)


def select_specs(names: Iterable[str], specs: list[ModelSpec]) -> list[ModelSpec]:
    """Return the manifest entries for the given model names (all variants).

    Raises:
        ModelError: A name is not in the manifest.
    """
    known = model_names(specs)
    chosen: list[ModelSpec] = []
    for name in names:
        if name not in known:
            raise ModelError(f"unknown model {name!r}: use one of {', '.join(known)}")
        chosen.extend(s for s in specs if s.name == name)
    return chosen
