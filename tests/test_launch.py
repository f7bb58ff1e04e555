"""Starting the zygote: matplotlib's font list is built once per machine, outside the sandbox, and the
sandbox reads a copy of it (matplotlib would otherwise read every font on the machine at each grader
start: about 2 s of CPU, the largest share of starting a grade)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autograder.core import launch

PROBE = ("import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stdout); "
         "import matplotlib.font_manager")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # one per module: the list is built once, as on a machine


@pytest.fixture
def cache_home(cache_root, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_root))
    return cache_root


def test_the_font_list_is_built_once_and_each_run_gets_a_copy(tmp_path, cache_home, monkeypatch):
    (tmp_path / "a").mkdir()
    first = launch.font_list(tmp_path / "a")
    assert first is not None and first.parent == tmp_path / "a" / "mpl" and first.name.startswith("fontlist-")
    built = list(cache_home.glob("rnn-autograder/mpl-*/fontlist-*.json"))
    assert len(built) == 1 and built[0].read_bytes() == first.read_bytes()

    def no_build(*a, **k):
        raise AssertionError("the font list was built a second time")

    monkeypatch.setattr(launch.subprocess, "run", no_build)
    (tmp_path / "b").mkdir()
    second = launch.font_list(tmp_path / "b")
    assert second is not None and second != first and second.read_bytes() == first.read_bytes()


def test_a_cache_folder_that_cannot_be_written_costs_only_the_time(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    (tmp_path / "run").mkdir()
    assert launch.font_list(tmp_path / "run") is None


def test_matplotlib_reads_the_copy_without_and_with_bubblewrap(tmp_path, cache_home):
    host = tmp_path / "host"
    host.mkdir()
    assert launch.font_list(host) is not None
    env = dict(os.environ, MPLCONFIGDIR=str(host / "mpl"), MPLBACKEND="Agg")
    plain = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert "Using fontManager instance from" in plain.stdout and "generated new fontManager" not in plain.stdout, \
        plain.stdout[-2000:] + plain.stderr[-2000:]
    if not launch.bwrap_usable():
        pytest.skip("bubblewrap is not usable here: the plain path above is what runs")
    argv = [launch.bwrap_path(), *launch._bwrap_args(host), sys.executable, "-c", PROBE]
    boxed = subprocess.run(argv, env={"PATH": os.environ["PATH"], "MPLBACKEND": "Agg"}, capture_output=True,
                           text=True, timeout=120)
    assert boxed.returncode == 0, boxed.stderr[-2000:]
    assert "Using fontManager instance from /tmp/mpl/" in boxed.stdout, boxed.stdout[-2000:]
    assert "generated new fontManager" not in boxed.stdout
