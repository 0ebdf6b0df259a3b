"""The on-disk cache of compiled models (bayescale.base.compiled): where it is, what keys it, what it trusts."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bayescale as bs
from bayescale.fitting.modelpriors import data_scale, resolved_priors
from bayescale.base import compiled as C
from bayescale.fitting import graph as G
from bayescale.fitting import sampling as S
def _graph(model, runs):
    r = model.read_runs(runs)
    scale = data_scale(model, r)
    priors = resolved_priors(model, scale)
    graph = G.graph_for(model, priors)
    values = G.data_values(model, r, priors, scale)
    S._set_data(graph, values)
    return graph, values


def test_cache_dir_is_overridable(monkeypatch, tmp_path):
    monkeypatch.delenv(C.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert C.cache_dir() == tmp_path / "xdg" / "bayescale" / "compiled"
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "env"))
    assert C.cache_dir() == tmp_path / "env" / "compiled"
    assert C.cache_dir(tmp_path / "arg") == tmp_path / "arg" / "compiled"  # the argument wins
    assert C.cache_dir(False) is None
    for off in ("off", "0", "none", ""):
        monkeypatch.setenv(C.CACHE_ENV, off)
        assert C.cache_dir() is None
    with pytest.raises(TypeError, match="cache_dir must be a folder"):
        C.cache_dir(3)
    with pytest.raises(ValueError, match="empty string"):
        C.cache_dir("  ")


def test_fit_checks_cache_dir_before_any_work(chinchilla_runs):
    with pytest.raises(TypeError, match="cache_dir must be a folder.*int 3"):
        bs.ScalingModel("chinchilla").fit(chinchilla_runs, cache_dir=3)


def test_different_structures_do_not_share_a_key(chinchilla_runs):
    keys = {}
    for label, model in [("chinchilla", bs.ScalingModel("chinchilla")),
                         ("normal", bs.ScalingModel("chinchilla", likelihood="normal")),
                         ("kaplan", bs.ScalingModel("kaplan")),
                         ("power_n", bs.ScalingModel("power_n"))]:
        graph, _ = _graph(model, chinchilla_runs)
        keys[label] = C.structure_key(graph, graph.n_groups)
    assert len(set(keys.values())) == len(keys), keys
    # the same structure with other data (and other prior values) keeps its key
    graph, _ = _graph(bs.ScalingModel("chinchilla"), chinchilla_runs.iloc[::2])
    assert C.structure_key(graph, 1) == keys["chinchilla"]
    assert C.structure_key(graph, 2) != keys["chinchilla"]


def _entry(chinchilla_fit, chinchilla_runs, folder):
    """An entry of the default model's compiled log density, compiled (or loaded) by the session's fit."""
    graph, values = _graph(bs.ScalingModel("chinchilla"), chinchilla_runs)
    S.compile_for_nutpie(graph)  # in memory since the session's fit
    key = C.structure_key(graph, graph.n_groups)
    path = folder / f"{key[:40]}.bin"
    assert C._store(path, key, graph.nutpie_model)
    return graph, values, key, path


def test_an_entry_reproduces_the_compiled_log_density(chinchilla_fit, chinchilla_runs, tmp_path):
    graph, values, key, path = _entry(chinchilla_fit, chinchilla_runs, tmp_path)
    loaded = C._load(path, key, graph.pymc_model)
    x = np.linspace(-1.0, 1.0, loaded.n_dim)
    want = C.LogpGrad(graph.nutpie_model.with_data(**values))(x)
    got = C.LogpGrad(loaded.with_data(**values))(x)
    assert got[0] == want[0] and np.array_equal(got[1], want[1])
    with pytest.raises(ValueError, match="key mismatch"):  # an entry answers only to its own key
        C._load(path, "0" * 64, graph.pymc_model)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign", "writable by others"])
def test_a_damaged_entry_is_rebuilt_not_trusted(chinchilla_fit, chinchilla_runs, tmp_path, monkeypatch, damage):
    graph, values, key, path = _entry(chinchilla_fit, chinchilla_runs, tmp_path / "compiled")
    data = path.read_bytes()
    if damage == "flip":  # one byte of the machine code
        i = len(data) // 2
        data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
    elif damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "empty":
        data = b""
    elif damage == "foreign":  # a file of some other format under the entry's name
        data = b"\x80\x04\x95" + data[3:]
    path.write_bytes(data)
    if damage == "writable by others":
        if not hasattr(os, "getuid"):
            pytest.skip("POSIX permissions")
        path.chmod(0o666)
    with pytest.raises(ValueError):
        C._read(path, key)
    compiles = []

    def compile_pymc_model(model, **kwargs):  # stands in for the compile (seconds) with the session's result
        compiles.append(kwargs)
        return graph.nutpie_model

    import nutpie

    monkeypatch.setattr(nutpie, "compile_pymc_model", compile_pymc_model)
    monkeypatch.setattr(C, "_LOADED", {})  # as in a fresh process
    compiled, source = C.compile_model(graph, graph.n_groups, tmp_path)
    assert source == "compiled" and len(compiles) == 1
    assert compiled is graph.nutpie_model
    C._read(path, key)  # rewritten whole
    assert not list(path.parent.glob("*.tmp"))


def test_concurrent_fills_leave_one_whole_entry(tmp_path):
    """Processes writing the same entry at once: every read sees a whole entry, and no temporary is left."""
    path = tmp_path / "compiled" / "entry.bin"
    writer = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from bayescale.base.compiled import _write
        who = sys.argv[1]
        for i in range(60):
            _write(Path({str(path)!r}), {{"key": "k", "format": 1, "who": who, "i": i}},
                   [who.encode() * 50_000, bytes(range(256)) * 200])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, who]) for who in ("a", "b", "c")]
    while any(p.poll() is None for p in procs):
        if path.exists():
            header, blobs = C._read(path, "k")  # never a partial file: raises if it were
            assert blobs[0] == header["who"].encode() * 50_000
    assert all(p.wait() == 0 for p in procs)
    header, _ = C._read(path, "k")
    assert header["i"] == 59
    assert not list(path.parent.glob("*.tmp"))


def test_clear_cache(tmp_path):
    folder = C.cache_dir(tmp_path)
    C._write(folder / "x.bin", {"key": "x", "format": 1}, [b"1"])
    (folder / "y.tmp").write_bytes(b"")
    (folder / "keep.txt").write_text("not ours")
    assert C.clear_cache(tmp_path) == 1
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_a_compile_is_announced_and_a_cache_hit_is_not(chinchilla_runs, monkeypatch, capsys):
    """The first fit of a structure tells a waiting person why it takes 10-40 s; loading from the cache is silent."""
    import nutpie

    graph, _ = _graph(bs.ScalingModel("chinchilla"), chinchilla_runs)
    kept = (graph.nutpie_model, graph.nutpie_source)  # the process's shared graph: restored below
    calls = []
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda *a, **k: calls.append(1) or "compiled model")
    try:
        graph.nutpie_model = None
        S.compile_for_nutpie(graph, cache=False, notice=True)
        assert calls == [1] and graph.nutpie_model == "compiled model"
        assert "compiling this model's log density" in capsys.readouterr().err
        S.compile_for_nutpie(graph, cache=False, notice=True)  # the process has it: nothing compiled, nothing said
        assert calls == [1] and capsys.readouterr().err == ""
        graph.nutpie_model = None
        S.compile_for_nutpie(graph, cache=False, notice=False)
        assert calls == [1, 1] and capsys.readouterr().err == ""
    finally:
        graph.nutpie_model, graph.nutpie_source = kept


def test_an_entry_that_is_a_link_is_replaced_and_never_followed(tmp_path):
    """A link in the cache folder (planted, or left by another tool) is neither loaded nor written through."""
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    victim.chmod(0o644)
    folder = tmp_path / "compiled"
    folder.mkdir()
    entry = folder / "abc.bin"
    entry.symlink_to(victim)
    with pytest.raises(ValueError, match="link or not a regular file"):
        C._read(entry, "abc")
    C._write(entry, {"key": "abc", "format": C._FORMAT}, [b"code"])
    assert victim.read_text() == "keep me" and (victim.stat().st_mode & 0o777) == 0o644
    assert not entry.is_symlink() and entry.is_file()
    header, blobs = C._read(entry, "abc")
    assert header["key"] == "abc" and blobs == [b"code"]


def test_processes_sharing_a_cache_compile_one_structure_one_at_a_time(chinchilla_runs, monkeypatch, tmp_path):
    """While another holder has a structure's lock, a compile of it waits; then it goes on (here: nothing stored
    by the other holder, so it compiles). The lock is a file lock, held across processes as across threads."""
    import threading

    import nutpie

    from bayescale.base.files import folder_lock

    graph, _ = _graph(bs.ScalingModel("chinchilla"), chinchilla_runs)
    key = C.structure_key(graph, 1)
    folder = C.cache_dir(tmp_path)
    folder.mkdir(parents=True)
    calls = []
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda *a, **k: calls.append(1) or "compiled model")
    monkeypatch.setattr(C, "_LOADED", {})  # as a fresh process: nothing of this structure loaded yet
    result = {}
    with folder_lock(folder, f".{key[:40]}.lock"):
        worker = threading.Thread(target=lambda: result.update(out=C.compile_model(graph, 1, tmp_path)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive() and calls == []  # waiting for the lock, not compiling
    worker.join(timeout=60)
    assert not worker.is_alive() and calls == [1]
    assert result["out"] == ("compiled model", "compiled, not cached")  # a sentinel cannot be stored
    assert not (folder / f".{key[:40]}.lock").is_symlink()
