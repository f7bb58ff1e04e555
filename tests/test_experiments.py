"""The book's long experiments (book/experiments/*.py) still run: each in its short (smoke) mode, which
must finish and write nothing; the chapters read the committed results in book/data/."""
import hashlib
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO

EXPERIMENTS = sorted((REPO / "book" / "experiments").glob("*.py"))
# Experiments without a smoke mode of their own: a short call of main() with its output redirected.
SHORT_CALL = {"ch06_window_sweep": {"steps": 2, "seeds": (0,), "futures": (0, 4)}}


def _data_hashes():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (REPO / "book" / "data").glob("*")}


def test_there_are_experiments():
    assert len(EXPERIMENTS) >= 5


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_short_mode(path, tmp_path, monkeypatch):
    before = _data_hashes()
    if path.stem in SHORT_CALL:
        spec = importlib.util.spec_from_file_location(f"experiment_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        monkeypatch.setattr(mod, "OUT", tmp_path / "out.json")
        mod.main(**SHORT_CALL[path.stem])
        assert (tmp_path / "out.json").stat().st_size > 0
    else:
        env = {k: v for k, v in os.environ.items() if k != "RNNBOOK_FULL"}
        env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        r = subprocess.run([sys.executable, str(path)], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, f"{path.name} (short mode) failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert _data_hashes() == before, f"{path.name} changed book/data/ in its short mode"
