"""The model manifest: its entries, the model names, which file of a models folder a name means, checksums.

Layer 1 (no network, nothing above it): :mod:`edgepose.models` fetches and prepares the files the
manifest names; the family registry (:mod:`edgepose.inference.registry`) says how each entry's ``family``
opens.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ModelError
from edgepose.system_install import system_install

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_CHUNK = 1 << 16


@dataclass(frozen=True)
class ModelFiles:
    """The model to run: its CPU file and, when known, its EdgeTPU-compiled twin."""

    name: str
    cpu_path: Path | None
    edgetpu_path: Path | None


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry: a model file of a model family, with its checksums and upstream URL.

    ``family`` names the entry's model family in the registry (``movenet``, ``posenet``, ``blazepose``);
    ``variant`` is ``cpu`` or ``edgetpu`` for a one-stage family, the stage's name for a multi-stage one
    (BlazePose's ``detector`` and ``landmark``). A prepared entry (``prepare`` set) names the upstream
    ``source`` file (its path under the upstream folder and the mirror, with its own checksums); ``url`` is
    the source's, and ``file``, ``sha256`` and ``bytes`` are the prepared file's. ``input_width`` is set
    when the input is not square. Any entry may name its ``source`` path under the mirror (BlazePose's
    files sit in ``blazepose/``).
    """

    name: str
    variant: str
    family: str
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

    def source_spec(self) -> ModelSpec:
        """Return the upstream file a prepared entry is derived from, as an entry of its own."""
        return ModelSpec(
            name=self.name,
            variant=self.variant,
            family=self.family,
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


def model_choices(default: str = "", specs: Iterable[ModelSpec] | None = None) -> str:
    """Say which models ``--model`` and ``[model] name`` accept: the manifest's names, ``default`` (if given) marked."""
    names = model_names(load_manifest() if specs is None else specs)
    return ", ".join(f"{name} (default)" if name == default else name for name in names) + ", or a .tflite path"


def model_family(choice: str, specs: Iterable[ModelSpec] | None = None) -> str:
    """Return the ``family`` of a manifest model name, or ``""`` for anything else (a file path)."""
    return next((s.family for s in (load_manifest() if specs is None else specs) if s.name == choice), "")


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


def resolve_variants(
    choice: str, models_dir: Path, cpu: str = "cpu", edgetpu: str = "edgetpu", specs: list[ModelSpec] | None = None
) -> ModelFiles:
    """Return the files of a manifest model's variants: ``cpu``'s and, when named, its EdgeTPU twin ``edgetpu``'s.

    A variant the manifest does not list has no path (an EdgeTPU-only model has no CPU file).
    """
    specs = specs if specs is not None else load_manifest()
    by_variant = {s.variant: s for s in specs if s.name == choice}
    cpu_spec = by_variant.get(cpu)
    tpu_spec = by_variant.get(edgetpu) if edgetpu else None
    return ModelFiles(
        name=choice,
        cpu_path=models_dir / cpu_spec.file if cpu_spec else None,
        edgetpu_path=models_dir / tpu_spec.file if tpu_spec else None,
    )


def resolve_model(choice: str, models_dir: Path, specs: list[ModelSpec] | None = None) -> ModelFiles:
    """Turn ``--model`` (a manifest name of a one-stage family, or a file path) into the files to load.

    Raises:
        ModelError: Neither a known name nor an existing path.
    """
    specs = specs if specs is not None else load_manifest()
    if any(s.name == choice and s.variant in ("cpu", "edgetpu") for s in specs):
        return resolve_variants(choice, models_dir, specs=specs)
    path = Path(choice).expanduser()
    if path.suffix != ".tflite" and not path.exists():
        names = ", ".join(model_names(specs))
        raise ModelError(f"unknown model {choice!r}: use one of {names}, or a path to a .tflite file")
    if path.name.endswith("_edgetpu.tflite"):
        return ModelFiles(name=path.stem, cpu_path=None, edgetpu_path=path)
    twin = path.with_name(path.stem + "_edgetpu.tflite")
    return ModelFiles(name=path.stem, cpu_path=path, edgetpu_path=twin if twin.is_file() else None)


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
