"""Safe writes (bayescale.base.files) and checkpoint folders shared by several processes: no fit run needed."""

import json
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayescale as bs
from bayescale.base.errors import FileWriteError
from bayescale.base.files import STALE_SECONDS, atomic_write, folder_lock, make_folder, remove_stale_temporaries

PACKAGE = Path(bs.__file__).parent
ROOT = os.geteuid() == 0


def _writer(text):
    return lambda tmp: Path(tmp).write_text(text)


def _hidden(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def _make(kind, path, mode):
    """Put a `kind` at `path`; return what a write must leave there (None: refused)."""
    if kind == "new":
        return None
    if kind == "file":
        path.write_text("old")
        path.chmod(mode)
    elif kind == "symlink":
        real = path.with_name("real-" + path.name)
        real.write_text("old")
        real.chmod(mode)
        path.symlink_to(real.name)
    elif kind == "dangling symlink":
        path.symlink_to("elsewhere-" + path.name)
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a relative name: socket paths are limited to about 100 bytes
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(path.name)
            sock.close()
        finally:
            os.chdir(here)
    elif kind == "character device":
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null
    return kind


def _can_make_devices() -> bool:
    import tempfile

    probe = Path(tempfile.mkdtemp()) / "dev"
    try:
        os.mknod(probe, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (OSError, AttributeError):
        return False
    probe.unlink()
    return True


KINDS = ["new", "file", "symlink", "dangling symlink", "directory", "fifo", "socket"] + (
    ["character device"] if _can_make_devices() else [])
REFUSED = {"directory": "directory", "fifo": "FIFO", "socket": "socket", "character device": "character device"}


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), mode=st.sampled_from([0o644, 0o600, 0o640, 0o664, 0o755, 0o444]),
       umask=st.sampled_from([0o022, 0o077, 0o002, 0o027]), name=st.text(
           st.characters(codec="utf-8", exclude_characters="/\0", exclude_categories=("Cs",)), min_size=1,
           max_size=24).filter(lambda n: n not in (".", "..")))
def test_atomic_write_replaces_only_regular_files_and_keeps_links_and_modes(kind, mode, umask, name,
                                                                             tmp_path_factory):
    folder = tmp_path_factory.mktemp("w")
    path = folder / name
    _make(kind, path, mode)
    before = os.lstat(path) if kind != "new" else None
    old = os.umask(umask)
    try:
        if kind in REFUSED:
            with pytest.raises(FileWriteError, match=re.escape(repr(str(path))) + f".*{REFUSED[kind]}"):
                atomic_write(path, _writer("new"), "fit")
            after = os.lstat(path)
            assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # untouched
        else:
            atomic_write(path, _writer("new"), "fit")
            assert path.read_text() == "new"
            if kind in ("symlink", "dangling symlink"):
                assert path.is_symlink(), "the link must stay a link, its target gets the content"
            expected = mode if kind in ("file", "symlink") else 0o666 & ~umask
            assert stat.S_IMODE(os.stat(path).st_mode) == expected
    finally:
        os.umask(old)
    assert not [n for n in _hidden(folder) if n.endswith(".tmp")], "a temporary file was left behind"


def _unwritable_folder(tmp_path):
    if not ROOT:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    probe = Path("/sys") / ".bayescale-probe"  # root writes anywhere but in pseudo file systems
    try:
        probe.touch()
    except OSError:
        return Path("/sys")
    probe.unlink()
    pytest.skip("no unwritable folder available to root here")


@pytest.mark.parametrize("case", ["empty", "nul", "directory", "trailing slash", "missing folder",
                                  "file as folder", "unwritable folder", "not a path"])
def test_bad_save_paths_get_one_error_naming_the_users_path(case, tmp_path):
    paths = {"empty": "", "nul": str(tmp_path / "a\0b.nc"), "directory": str(tmp_path),
             "trailing slash": str(tmp_path / "new") + "/", "missing folder": str(tmp_path / "no" / "fit.nc"),
             "file as folder": str(tmp_path / "plain.txt" / "fit.nc"),
             "unwritable folder": str(_unwritable_folder(tmp_path) / "fit.nc") if case == "unwritable folder" else "",
             "not a path": 3}
    (tmp_path / "plain.txt").write_text("x")
    path = paths[case]
    error = {"empty": ValueError, "nul": ValueError, "not a path": TypeError}.get(case, FileWriteError)
    with pytest.raises(error) as info:
        atomic_write(path, _writer("new"), "fit")
    message = str(info.value)
    assert repr(path) in message or f"{type(path).__name__} {path!r}" in message
    assert ".tmp" not in message  # never the hidden temporary file
    assert not [n for n in _hidden(tmp_path) if n.endswith(".tmp")]


def test_a_failing_write_names_the_path_keeps_the_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "fit.nc"
    path.write_text("good")

    def broken(tmp):
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device", tmp)

    with pytest.raises(FileWriteError, match=r"'.*fit\.nc': No space left on device") as info:
        atomic_write(path, broken, "fit")
    assert ".tmp" not in str(info.value)
    assert path.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_stale_temporaries_of_killed_saves_are_removed_and_nothing_else(tmp_path):
    old = time.time() - 2 * STALE_SECONDS
    names = {".fit.nc.0a1b2c3d.tmp": True,    # ours, stale: removed
             ".fit.nc.k2x_9qzt.tmp": True,    # an older version's (mkstemp) name, stale: removed
             ".fit.nc.99aa88bb.tmp": False,   # ours but recent: a save in progress elsewhere
             ".fit.nc.notes.tmp": False,      # not our pattern
             "fit.nc.0a1b2c3d.tmp": False,    # not hidden
             ".other.nc.0a1b2c3d.tmp": False}  # another file's: left to a save of that file
    for name, stale in names.items():
        (tmp_path / name).write_text("x")
        if stale or name != ".fit.nc.99aa88bb.tmp":
            os.utime(tmp_path / name, (old, old))
    (tmp_path / ".fit.nc.aaaabbbb.tmp").symlink_to("fit.nc")  # not a regular file: left alone
    os.utime(tmp_path / ".fit.nc.aaaabbbb.tmp", (old, old), follow_symlinks=False)
    atomic_write(tmp_path / "fit.nc", _writer("new"), "fit")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"fit.nc", ".fit.nc.aaaabbbb.tmp"} | {n for n, stale in names.items() if not stale}
    assert remove_stale_temporaries(tmp_path) == [".other.nc.0a1b2c3d.tmp"]  # folder-wide


def test_checkpoint_dir_that_is_not_a_folder_is_refused_before_any_fit(tmp_path):
    file = tmp_path / "fits"
    file.write_text("a file")
    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8, 8e8] * 2, "loss": 3.0, "k": [1] * 4 + [2] * 4})
    with pytest.raises(FileWriteError, match=r"checkpoint_dir '.*fits' is a regular file, not a folder"):
        bs.fit_many(bs.ScalingModel("power_n"), runs, by="k", checkpoint_dir=file)
    with pytest.raises(FileWriteError, match="cannot be created"):
        make_folder(file / "sub", "checkpoint_dir")
    with pytest.raises(ValueError, match="checkpoint_dir is empty"):
        make_folder("", "checkpoint_dir")


def test_every_file_the_package_writes_goes_through_atomic_write():
    """The class, not the examples: no module but files.py replaces, creates or opens files for writing."""
    patterns = [r"os\.replace\(", r"mkstemp\(", r"\.savefig\(\s*(?!tmp|buf\b)", r"open\([^)]*['\"][wax]b?['\"]",
                r"write_(text|bytes)\(", r"to_netcdf\(\s*(?!tmp)", r"os\.rename\("]
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "files.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "doctest" not in line and "``" not in line and any(re.search(p, line) for p in patterns):
                if "lambda tmp" not in line:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# ------------------------------------------------------------ two writers, one checkpoint folder
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bayescale.many.resume import ResumeFolder

    class Fit:  # what the index layer reads of a fit
        def __init__(self, seed):
            self.settings, self.converged = {"random_seed": seed}, True
            self.idata = type("T", (), {"attrs": {"batch_data": "d"}})()
        def save(self, path):
            Path(path).write_bytes(b"fit")

    folder, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    ckpt = ResumeFolder(folder, {"law": "power_n"}, {"draws": 1, "tune": 1, "chains": 1, "sampler": "nutpie",
                       "target_accept": 0.9}, None, ["k"], fresh_seed=int(sys.argv[5]))
    while not go.exists():
        time.sleep(0.001)
    for i in range(n):
        ckpt.store(f"{tag}{i}", Fit(i))
        if i % 7 == 0:
            ckpt.record_error(f"{tag}-bad{i}", "a failed key")
    print(ckpt.random_seed)
    """)


def test_two_processes_sharing_a_checkpoint_folder_lose_no_index_entry(tmp_path):
    """Two real processes store different keys into one folder at once; the index lists every one of them and
    both use the seed of the process that claimed the folder first."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    folder, go, n = tmp_path / "fits", tmp_path / "go", 60
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    procs = [subprocess.Popen([sys.executable, str(script), str(folder), tag, str(n), str(go), seed],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for tag, seed in (("a", "11"), ("b", "22"))]
    deadline = time.monotonic() + 120
    while not (folder / "index.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # both processes past their start-up, waiting for the signal
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-2000:] for _, err in outs]
    index = json.loads((folder / "index.json").read_text())
    files = {p.name for p in folder.glob("*.nc")}
    assert len(files) == 2 * n and set(index["fits"]) == files
    assert sorted(e["key"][0] for e in index["fits"].values()) == sorted(f"{t}{i}" for t in "ab" for i in range(n))
    assert len(index["errors"]) == 2 * len(range(0, n, 7))
    assert {out.decode().strip() for out, _ in outs} == {str(index["random_seed"])}
    assert not [n for n in _hidden(folder) if n.endswith(".tmp")]


def test_folder_lock_excludes_other_processes(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from bayescale.base.files import folder_lock
        with folder_lock({str(tmp_path)!r}):
            print("held", flush=True)
            time.sleep(1.0)
            open({str(tmp_path / "released")!r}, "w").close()
        """)], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert holder.stdout.readline().strip() == b"held"
    with folder_lock(tmp_path):
        assert (tmp_path / "released").exists(), "the lock was taken while another process held it"
    holder.wait(timeout=60)


@pytest.mark.parametrize("kind", ["fifo", "directory", "socket"])
def test_a_checkpoint_index_that_is_not_a_file_is_refused_not_read(kind, tmp_path):
    """Reading a FIFO named index.json would block forever; a directory there would be replaced."""
    from bayescale.many.resume import ResumeFolder

    _make(kind, tmp_path / "index.json", 0o644)
    with pytest.raises(FileWriteError, match=rf"index\.json'.*{REFUSED[kind]}"):
        ResumeFolder(tmp_path, {"law": "power_n"}, {"draws": 1, "tune": 1, "chains": 1, "sampler": "nutpie",
                    "target_accept": 0.9}, 1, ["k"])
