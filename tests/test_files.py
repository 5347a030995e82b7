"""Writing files whole: temp names, stale temps, permissions, fsync, errors (issue 17)."""

import os
import stat
import subprocess
import sys

import pytest

from graphattn._files import atomic_write


def test_temp_files_match_no_glob_for_the_real_suffix(tmp_path):
    seen = []

    def write(tmp):
        seen.append((tmp.name, sorted(p.name for p in tmp_path.glob("*.npz"))))
        tmp.write_bytes(b"x")

    atomic_write(tmp_path / "out.npz", write)
    name, globbed = seen[0]
    assert not name.endswith(".npz") and globbed == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


def test_graph_npz_files_are_written_through_a_temp_without_the_suffix(tmp_path, monkeypatch):
    from graphattn import TokenGraph

    names = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (names.append(os.path.basename(a)), real(a, b)))
    TokenGraph([[0], [1]]).save(tmp_path / "g.npz")
    assert names and not names[0].endswith(".npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.npz"]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_stale_temps_of_a_dead_writer_are_removed_on_the_next_write_to_the_same_place(tmp_path):
    stale = tmp_path / f".out.png.tmp-{_dead_pid()}-abc123"
    stale.write_bytes(b"")
    live = tmp_path / f".out.png.tmp-{os.getppid()}-def456"  # a writer still running: kept
    live.write_bytes(b"")
    other = tmp_path / f".other.png.tmp-{_dead_pid()}-ghi789"  # another target: not ours
    other.write_bytes(b"")
    atomic_write(tmp_path / "out.png", lambda tmp: tmp.write_bytes(b"png"))
    assert not stale.exists() and live.exists() and other.exists()


def test_the_file_is_fsynced_before_it_is_renamed(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("hi"))
    assert events[:2] == ["fsync", "replace"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_an_unwritable_target_is_named_in_the_error_not_the_temp():
    with pytest.raises(OSError, match=r"/proc/x\.png") as info:
        atomic_write("/proc/x.png", lambda tmp: tmp.write_bytes(b""))
    assert ".tmp-" not in str(info.value)


def test_checkpoints_have_the_permissions_of_every_other_output_and_no_leftovers(tmp_path):
    from test_experiments import tiny

    from graphattn.experiments import run_experiment

    run_experiment(tiny(), tmp_path, progress=False)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
    assert len(modes) == 1, modes
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["causal-seed0.safetensors", "window-2-seed0.safetensors"]


def test_a_corrupt_checkpoint_is_named_with_fresh_suggested(tmp_path):
    from test_experiments import tiny

    from graphattn.experiments import run_experiment

    run_experiment(tiny(), tmp_path, progress=False)
    ckpt = tmp_path / "checkpoints" / "causal-seed0.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match=r"causal-seed0\.safetensors.*--fresh"):
        run_experiment(tiny(), tmp_path, progress=False)
