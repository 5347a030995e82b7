"""The wheel built from a clean checkout installs into a fresh environment and runs the demo.

The checkout's tracked files are copied to a temporary folder and built there
(``pip wheel --no-deps --no-build-isolation``: offline, with this
environment's setuptools). The wheel goes into a new virtual environment with
``pip install --no-deps``; its dependencies (torch, matplotlib, ...) are this
environment's, reached by a path line in the new one's site-packages, which
runs no ``.pth`` hook, so the checkout's editable install stays out of
sight. ``graphattn demo`` then runs from a folder outside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Files the package reads at run time, by where they sit in the wheel.
SHIPPED = [
    "graphattn/plot/assets/viewer.js",
    "graphattn/plot/assets/viewer.css",
    "graphattn/pretrained/data/reorder-full.safetensors",
    "graphattn/pretrained/data/reorder-window2.safetensors",
    "graphattn/experiments/data/comedy_of_errors.txt",
    "graphattn/experiments/data/README.md",
]


def run(*args: str | Path, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def clean_checkout(dest: Path) -> Path:
    """The tracked files of the checkout (as they are on disk), copied to ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    src = clean_checkout(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", out, src, cwd=src)
    (whl,) = out.glob("graphattn-*.whl")
    return whl


def test_the_wheel_carries_every_file_the_package_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in SHIPPED if f not in names] == []
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "graphattn").rglob("*.py")}
    assert sorted(sources - names) == []


@pytest.mark.slow
def test_graphattn_demo_runs_from_the_installed_wheel_outside_the_checkout(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=tmp_path).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co.
    run(py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = run(py, "-c", "import graphattn; print(graphattn.__file__)", cwd=tmp_path, env=env)
    assert Path(where.strip()).is_relative_to(site)  # the wheel's copy, not the checkout
    out = tmp_path / "demo"
    run(env_dir / "bin" / "graphattn", "demo", "--model", "tiny", "--quiet", "--out", out,
        cwd=tmp_path, env=env)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 9 and "09-cross.png" in pngs
    assert "graphattn-data" in (out / "viewer-1.html").read_text()  # viewer.js inlined
