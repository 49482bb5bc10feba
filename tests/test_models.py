"""The model manifest, fetching from a local mirror with verification, and `models verify`."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from conftest import LIGHTNING, LIGHTNING_EDGETPU, MIRROR, assert_one_line_error, run_cli

from edgepose.manifest import git_blob_id, load_manifest, resolve_model, verify_file
from edgepose.models import fetch_one


def test_manifest_lists_lightning_and_thunder_in_both_variants() -> None:
    specs = load_manifest()
    assert {(s.name, s.variant) for s in specs} == {
        ("lightning", "cpu"), ("lightning", "edgetpu"), ("thunder", "cpu"), ("thunder", "edgetpu"),
        ("posenet", "cpu"), ("posenet", "edgetpu"), ("blazepose", "detector"), ("blazepose", "landmark"),
    }  # fmt: skip
    sizes = {s.name: s.input_size for s in specs if s.name != "blazepose"}
    assert sizes == {"lightning": 192, "thunder": 256, "posenet": 481}
    stages = {s.variant: s.input_size for s in specs if s.name == "blazepose"}
    assert stages == {"detector": 224, "landmark": 256}
    for spec in specs:
        assert spec.url.startswith("https://") and spec.url.endswith("/" + Path(spec.source or spec.file).name)
        assert spec.sha256 or spec.git_blob


def test_mirror_files_verify_by_sha256_and_git_blob() -> None:
    for spec in load_manifest():
        path = MIRROR / (spec.source if spec.source and not spec.prepare else spec.file)
        if not path.exists():
            continue
        assert verify_file(spec, path) is None
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
        assert git_blob_id(path) == spec.git_blob


def test_thunder_resolves_to_its_own_files(tmp_path: Path) -> None:
    files = resolve_model("thunder", tmp_path)
    assert files.cpu_path == tmp_path / "movenet_single_pose_thunder_ptq.tflite"
    assert files.edgetpu_path == tmp_path / "movenet_single_pose_thunder_ptq_edgetpu.tflite"


@pytest.mark.slow
def test_fetch_from_mirror_then_list_and_verify(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    proc = run_cli("models", "fetch", "--from", str(MIRROR), "--models-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert f"OK {LIGHTNING}: copied from" in proc.stdout
    assert "100%" in proc.stderr, "fetch shows progress"
    again = run_cli("models", "fetch", "--models-dir", str(folder), env={"EDGEPOSE_MODEL_MIRROR": str(MIRROR)})
    assert again.returncode == 0 and "present, verified" in again.stdout
    listing = run_cli("models", "list", "--models-dir", str(folder))
    assert listing.returncode == 0
    assert "lightning  cpu" in listing.stdout and "not fetched" in listing.stdout
    assert run_cli("models", "verify", "--models-dir", str(folder)).returncode == 0


@pytest.mark.slow
def test_corrupt_file_is_detected_and_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(MIRROR / LIGHTNING, folder / LIGHTNING)
    with (folder / LIGHTNING).open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\xff\xff\xff\xff")
    proc = run_cli("models", "verify", "--models-dir", str(folder))
    assert proc.returncode == 1 and f"FAIL {LIGHTNING}: sha256" in proc.stdout
    fixed = run_cli("models", "fetch", "--from", str(MIRROR), "--models-dir", str(folder))
    assert fixed.returncode == 0, fixed.stderr
    assert run_cli("models", "verify", "--models-dir", str(folder)).returncode == 0


def test_bad_mirror_copy_is_not_installed(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / LIGHTNING).write_bytes(b"TFL3" * 1000)
    shutil.copyfile(MIRROR / LIGHTNING_EDGETPU, mirror / LIGHTNING_EDGETPU)
    folder = tmp_path / "models"
    proc = run_cli("models", "fetch", "--from", str(mirror), "--models-dir", str(folder))
    assert proc.returncode == 1
    assert "failed verification" in proc.stderr
    assert not (folder / LIGHTNING).exists(), "a file that fails verification is never installed"
    assert (folder / LIGHTNING_EDGETPU).exists(), "the good file is kept"
    assert not list(folder.glob(".*.part")), "no partial files are left behind"


def test_thunder_not_in_mirror_fails_clearly(tmp_path: Path) -> None:
    proc = run_cli("models", "fetch", "thunder", "--from", str(MIRROR), "--models-dir", str(tmp_path))
    assert proc.returncode == 1
    assert "movenet_single_pose_thunder_ptq.tflite is not in the mirror" in proc.stderr


def test_fetch_unknown_name(tmp_path: Path) -> None:
    proc = run_cli("models", "fetch", "nosuchmodel", "--from", str(MIRROR), "--models-dir", str(tmp_path))
    assert_one_line_error(proc, 2, "unknown model 'nosuchmodel'")


def test_a_fetched_model_is_synced_before_and_after_it_takes_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut on an SD card must leave the old file or the new one: data and folder are fsynced."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    spec = next(s for s in load_manifest() if s.file == LIGHTNING)
    assert fetch_one(spec, tmp_path / "models", MIRROR, lambda *_: None).startswith("copied")
    assert any(Path(p).name.startswith(f".{LIGHTNING}.") for p in synced), "the data, before the rename"
    assert synced[-1] == str(tmp_path / "models"), "the folder, after the rename"
    assert verify_file(spec, tmp_path / "models" / LIGHTNING) is None
