"""The model manifest, model resolution, and fetching from upstream or a local mirror with verification."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import EdgePoseError, ModelError
from edgepose.inference.posenet_prepare import strip_posenet_decoder
from edgepose.system_install import system_install

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MIRROR_ENV = "EDGEPOSE_MODEL_MIRROR"
DEFAULT_FETCH = ("lightning",)
_CHUNK = 1 << 16


#: How a prepared file is derived from its upstream source (the manifest's ``prepare``), and what to say.
PREPARERS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "strip-posenet-decoder": (strip_posenet_decoder, "PosenetDecoderOp removed"),
}


@dataclass(frozen=True)
class ModelFiles:
    """The model to run: its CPU file and, when known, its EdgeTPU-compiled twin."""

    name: str
    cpu_path: Path | None
    edgetpu_path: Path | None


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry: a model file with its checksums and upstream URL.

    A prepared entry (``prepare`` set) names the upstream ``source`` file (its path under the upstream
    folder and the mirror, with its own checksums); ``url`` is the source's, and ``file``, ``sha256`` and
    ``bytes`` are the prepared file's. ``input_width`` is set when the input is not square.
    ``family`` is ``blazepose`` for BlazePose's two stages (variants ``detector`` and ``landmark``, CPU only);
    single-model families (MoveNet, PoseNet) leave it empty and are told apart by their tensors. Any entry may
    name its ``source`` path under the mirror (BlazePose's files sit in ``blazepose/``).
    """

    name: str
    variant: str
    file: str
    input_size: int
    url: str
    sha256: str = ""
    git_blob: str = ""
    bytes: int = 0
    input_width: int = 0
    prepare: str = ""
    prepared_with: str = ""
    source: str = ""
    source_sha256: str = ""
    source_git_blob: str = ""
    source_bytes: int = 0
    family: str = ""

    def source_spec(self) -> ModelSpec:
        """Return the upstream file a prepared entry is derived from, as an entry of its own."""
        return ModelSpec(
            name=self.name,
            variant=self.variant,
            file=Path(self.source).name,
            input_size=self.input_size,
            url=self.url,
            sha256=self.source_sha256,
            git_blob=self.source_git_blob,
            bytes=self.source_bytes,
            input_width=self.input_width,
            source=self.source,
        )


def manifest_path() -> Path:
    """Return the manifest: packaged beside this module, or ``models/manifest.toml`` in a checkout."""
    packaged = Path(__file__).with_name("manifest.toml")
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[1] / "models" / "manifest.toml"


def load_manifest(path: Path | None = None) -> list[ModelSpec]:
    """Read the manifest's ``[[model]]`` entries."""
    with (path or manifest_path()).open("rb") as fh:
        data = tomllib.load(fh)
    return [ModelSpec(**entry) for entry in data["model"]]


def model_names(specs: Iterable[ModelSpec]) -> list[str]:
    """Return the distinct model names, in manifest order."""
    return list(dict.fromkeys(s.name for s in specs))


def default_models_dir() -> Path:
    """Return where models live when not configured.

    ``$STATE_DIRECTORY/models`` under systemd, else the system install's models folder when running from
    its environment, else the checkout's ``models/`` folder when running from source, else
    ``~/.local/share/edgepose/models``.
    """
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0]) / "models"
    install = system_install()
    if install is not None:
        return install.models_dir
    checkout = Path(__file__).resolve().parents[1] / "models"
    if (checkout / "manifest.toml").is_file():
        return checkout
    return Path.home() / ".local" / "share" / "edgepose" / "models"


def models_dir(configured: str = "") -> Path:
    """Return the configured models folder (``[model] models_dir``), or :func:`default_models_dir`."""
    return Path(configured).expanduser() if configured else default_models_dir()


def resolve_model(choice: str, models_dir: Path, specs: list[ModelSpec] | None = None) -> ModelFiles:
    """Turn ``--model`` (a manifest name or a file path) into the files to load.

    Raises:
        ModelError: Neither a known name nor an existing path.
    """
    specs = specs if specs is not None else load_manifest()
    by_name = {(s.name, s.variant): s for s in specs}
    if (choice, "cpu") in by_name or (choice, "edgetpu") in by_name:
        cpu = by_name.get((choice, "cpu"))
        tpu = by_name.get((choice, "edgetpu"))
        return ModelFiles(
            name=choice,
            cpu_path=models_dir / cpu.file if cpu else None,
            edgetpu_path=models_dir / tpu.file if tpu else None,
        )
    path = Path(choice).expanduser()
    if path.suffix != ".tflite" and not path.exists():
        names = ", ".join(model_names(specs))
        raise ModelError(f"unknown model {choice!r}: use one of {names}, or a path to a .tflite file")
    if path.name.endswith("_edgetpu.tflite"):
        return ModelFiles(name=path.stem, cpu_path=None, edgetpu_path=path)
    twin = path.with_name(path.stem + "_edgetpu.tflite")
    return ModelFiles(name=path.stem, cpu_path=path, edgetpu_path=twin if twin.is_file() else None)


def model_family(choice: str, specs: list[ModelSpec] | None = None) -> str:
    """Return the manifest's ``family`` of a ``--model`` choice (empty for single-model families and file paths)."""
    specs = specs if specs is not None else load_manifest()
    return next((s.family for s in specs if s.name == choice), "")


def resolve_stages(choice: str, models_dir: Path, specs: list[ModelSpec] | None = None) -> dict[str, ModelFiles]:
    """Return the files of a multi-stage model by stage (its manifest variants), each a CPU-only model.

    Raises:
        ModelError: ``choice`` is not a manifest name.
    """
    specs = specs if specs is not None else load_manifest()
    stages = {
        s.variant: ModelFiles(name=f"{choice} {s.variant}", cpu_path=models_dir / s.file, edgetpu_path=None)
        for s in specs
        if s.name == choice
    }
    if not stages:
        raise ModelError(f"unknown model {choice!r}: use one of {', '.join(model_names(specs))}")
    return stages


def git_blob_id(path: Path) -> str:
    """Return the git blob id of a file (``git hash-object``)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """Return the sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(spec: ModelSpec, path: Path) -> str | None:
    """Check a file against its manifest entry.

    Returns:
        ``None`` when it matches, else what is wrong (``permission denied`` when this user may not read it).
    """
    try:
        return _verify(spec, path)
    except PermissionError:
        return "permission denied"


def _verify(spec: ModelSpec, path: Path) -> str | None:
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if spec.bytes and size != spec.bytes:
        return f"size {size} bytes, expected {spec.bytes}"
    if spec.sha256:
        got = sha256_of(path)
        return None if got == spec.sha256 else f"sha256 {got}, expected {spec.sha256}"
    got = git_blob_id(path)
    return None if got == spec.git_blob else f"git blob id {got}, expected {spec.git_blob}"


def fetch_command(names: Iterable[str], folder: Path) -> str:
    """Return the command that fetches (or replaces damaged copies of) the named models in ``folder``.

    The one home of the repair hint: ``models fetch`` keeps a file that verifies and replaces one that does not.
    """
    return " ".join(["edgepose models fetch", *dict.fromkeys(names), f"--models-dir {folder}"])


def verify_installed(choice: str, folder: Path, variants: Iterable[str], specs: list[ModelSpec] | None = None) -> None:
    """Check the present files of a manifest model against their checksums before they are loaded.

    A damaged file (an SD card's flipped bit) still loads and runs, with wrong keypoints; this refuses it.
    A missing file is left to the loader, which says what is missing (and ``auto`` may do without the
    EdgeTPU twin). A ``--model`` path that is not a manifest name is not checked: there is nothing to
    compare it with.

    Args:
        choice: ``--model``: a manifest name (checked) or a file path (not checked).
        folder: The models folder.
        variants: The manifest variants that may be loaded (``cpu``, ``edgetpu``, BlazePose's stages).
        specs: The manifest (default: the packaged one).

    Raises:
        ModelError: A file differs from its manifest entry; the message names it and the command that repairs it.
    """
    specs = specs if specs is not None else load_manifest()
    wanted = set(variants)
    for spec in specs:
        if spec.name != choice or spec.variant not in wanted:
            continue
        path = folder / spec.file
        problem = verify_file(spec, path)
        if problem is not None and problem != "missing":
            raise ModelError(f"{path} is damaged: {problem}; replace it with: {fetch_command([choice], folder)}")


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
