"""The compiled log density of a model structure, kept on disk across processes.

nutpie compiles a model's log density and its expansion to the published
parameters with numba into two C callbacks. That compile is most of what the
first fit in a process costs (10-15 s here, against about 1 s of sampling), and
numba cannot cache it itself: the callbacks are closures. Their machine code
depends only on the model's structure (every data value is ``pm.Data``, read
through pointers at run time), so this module keeps it in a cache folder and
loads it in later processes, with numba's own serialisation of compiled code
(the form ``cache=True`` uses).

Where: ``$BAYESCALE_CACHE_DIR`` when set, else the user's cache folder
(``$XDG_CACHE_HOME/bayescale`` or ``~/.cache/bayescale`` on Linux,
``~/Library/Caches/bayescale`` on macOS, ``%LOCALAPPDATA%\\bayescale`` on
Windows), in a ``compiled`` subfolder; ``ScalingModel.fit(cache_dir=...)``
overrides both, ``cache_dir=False`` (or ``BAYESCALE_CACHE_DIR=off``) turns the
cache off. Deleting the folder (or :func:`clear_cache`) clears it.

An entry is one file named by a SHA-256 key of the model's graph (the log
density and the published parameters, as PyTensor prints them), the number of
groups, and the versions of Python, numba, llvmlite, nutpie, PyTensor, PyMC and
NumPy, the CPU and this file's format. It is written to a temporary file and
renamed into place, so two processes filling the same entry at once each write
a whole file and the last one wins. An entry is used only when its magic
bytes, its SHA-256 checksum and its key match, and when the loaded log density
reproduces, bit for bit, the log density and gradient it was stored with at a
stored point and data set; otherwise the model is compiled again and the entry
rewritten. Entries hold JSON and raw bytes: nothing in them is unpickled or
evaluated, and only the machine code this package wrote there is loaded (on
POSIX, from files owned by the current user and writable by no one else).
Code whose compile embedded process-specific addresses (numba's "dynamic
globals") is never stored.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FileWriteError
from .files import atomic_write, folder_lock

__all__ = ["cache_dir", "clear_cache", "CACHE_ENV"]

#: Environment variable naming the cache folder (``off``, ``0``, ``false`` or ``none``: no disk cache).
CACHE_ENV = "BAYESCALE_CACHE_DIR"
_OFF = ("", "0", "off", "false", "no", "none")
_MAGIC = b"BAYESCALE-COMPILED\n"
_FORMAT = 1
_SUBDIR = "compiled"
_LOCK = threading.Lock()
_LOADED: dict = {}  # key -> compiled model loaded from disk in this process (its code is loaded once)


# ------------------------------------------------------------------------------------------- where
def _user_cache_root() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"


def _expand(folder, where) -> Path:
    """`folder` with a leading ``~`` or ``~user`` expanded; a user that does not exist is a ValueError naming `where`."""
    path = Path(folder)
    try:
        return path.expanduser()
    except RuntimeError:  # Path.expanduser: "Could not determine home directory"
        raise ValueError(f"{where} is {os.fspath(folder)!r}, whose {path.parts[0]!r} names no user on this "
                         "machine (no home folder to expand it to); give a folder such as ~/.cache/bayescale, or "
                         "'off' for no disk cache") from None


def cache_dir(override=None):
    """The folder of compiled models, or None when the disk cache is off.

    Parameters
    ----------
    override : str, Path, bool or None
        A folder to use instead; ``False`` turns the cache off; ``None`` or
        ``True``: ``$BAYESCALE_CACHE_DIR`` when set, else the user's cache
        folder.

    Returns
    -------
    Path or None
        ``<folder>/compiled``.

    Examples
    --------
    >>> from bayescale.base.compiled import cache_dir
    >>> cache_dir("/tmp/bs-cache").as_posix()
    '/tmp/bs-cache/compiled'
    >>> cache_dir(False) is None
    True
    """
    if override is False:
        return None
    if override is None or override is True:
        env = os.environ.get(CACHE_ENV)
        if env is not None:
            if env.strip().lower() in _OFF:
                return None
            return _expand(env, f"environment variable {CACHE_ENV}") / _SUBDIR
        return _user_cache_root() / "bayescale" / _SUBDIR
    if isinstance(override, (str, os.PathLike)):
        if not str(override).strip():
            raise ValueError("cache_dir must name a folder, got an empty string; use cache_dir=False for no cache")
        return _expand(override, "cache_dir") / _SUBDIR
    raise TypeError(f"cache_dir must be a folder (str or Path), False or None, got {type(override).__name__} "
                    f"{override!r}")


def clear_cache(override=None) -> int:
    """Delete the compiled models of the cache folder; returns how many entries were removed.

    Parameters
    ----------
    override : str, Path or None
        As in :func:`cache_dir`.

    Examples
    --------
    >>> import tempfile
    >>> from bayescale.base.compiled import clear_cache
    >>> clear_cache(tempfile.mkdtemp())
    0
    """
    folder = cache_dir(override)
    if folder is None or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        if path.suffix in (".bin", ".tmp") and path.is_file():
            try:
                path.unlink()
                removed += path.suffix == ".bin"
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------------------------- key
def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version, "format": _FORMAT, "platform": sys.platform}
    for name in ("numba", "llvmlite", "nutpie", "pytensor", "pymc", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    import llvmlite.binding as ll

    out["cpu"] = ll.get_host_cpu_name()
    out["cpu_features"] = ll.get_host_cpu_features().flatten()
    return out


def structure_key(graph, n_groups) -> str:
    """SHA-256 over the model's graph and published parameters as PyTensor prints them, and versions."""
    import pytensor

    m = graph.pymc_model
    out = io.StringIO()
    # The model's random variables, potentials and published deterministics determine its log density (given
    # the PyMC version, part of the key); printing them is cheaper than building the log density.
    outputs = [*m.free_RVs, *m.observed_RVs, *m.potentials, *(m[n] for n in graph.published)]
    pytensor.dprint(outputs, file=out, print_type=True)
    extra = {"offsets": int(graph.n_offsets)} if getattr(graph, "n_offsets", 0) else {}
    text = json.dumps({
        **extra,
        "graph": out.getvalue(),
        "transforms": [(rv.name, type(m.rvs_to_transforms.get(rv)).__qualname__) for rv in m.free_RVs],
        "free": [(v.name, v.type.ndim) for v in m.value_vars],
        "published": list(graph.published),
        "groups": int(n_groups),
        "versions": _versions(),
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------- compiled functions
@dataclass(frozen=True)
class _Loaded:
    """Stands in for a numba CFunc: the address nutpie calls, and the code library that holds it."""

    address: int
    library: object
    func: dict  # as stored: library and wrapper names, external symbols, environments
    blobs: tuple  # object code and bitcode, as stored


class _SharedVar:
    """Stands in for a PyTensor shared variable in nutpie's ``shared_var_keys`` (name and rank)."""

    def __init__(self, name, ndim):
        self.name = name
        self.ndim = ndim

    def __repr__(self):
        return f"_SharedVar({self.name!r})"


_LOGP_SIG = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_void_p, ctypes.c_void_p)


class LogpGrad:
    """Calls a compiled model's log density and gradient on a flat unconstrained point.

    The same machine code the sampler runs; used by the mode search, so that it
    needs no compile of its own.
    """

    def __init__(self, compiled):
        self.compiled = compiled
        self.n_dim = int(compiled.n_dim)
        self._fn = _LOGP_SIG(int(compiled.compiled_logp_func.address))

    def __call__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.empty(self.n_dim)
        logp = np.empty(())
        code = self._fn(self.n_dim, x.ctypes.data, grad.ctypes.data, logp.ctypes.data,
                        self.compiled.user_data.ctypes.data)
        if code == 1 or code < 0:  # an exception inside (a parameter outside its support) or a bad call
            return float("nan"), np.full(self.n_dim, np.nan)
        return float(logp), grad  # codes 3 and 4 (a non-finite gradient or value) still fill both


def _initial_point_fn(model, shape_info):
    """The chains' initial points, as ``nutpie.compile_pymc_model`` makes them (PyMC support points, jittered)."""
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    fn = make_initial_point_fn(model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
                               return_transformed=True)
    names, _slices, shapes = shape_info
    n_free = len(model.free_RVs)
    return _rv_dict_to_flat_array_wrapper(_wrap_with_lock(fn), names=list(names[:n_free]),
                                          shapes=[tuple(s) for s in shapes[:n_free]])


def _check_point(compiled):
    """A fixed point and the log density and gradient there, with the compiled model's current data."""
    x = np.linspace(-0.5, 0.5, int(compiled.n_dim))
    logp, grad = LogpGrad(compiled)(x)
    return x, logp, grad


# ---------------------------------------------------------------------------------- file format
def _write(path: Path, header: dict, blobs: list) -> None:
    body = io.BytesIO()
    header = dict(header, blobs=[len(b) for b in blobs])
    head = json.dumps(header, sort_keys=True).encode()
    body.write(_MAGIC)
    body.write(len(head).to_bytes(8, "little"))
    body.write(head)
    for b in blobs:
        body.write(b)
    data = body.getvalue()
    data += hashlib.sha256(data).digest()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():  # an entry is a file of ours: a link is replaced, the file it points to never written
        path.unlink()
    # owner-only: entries are loaded only when no one else could have written them (see _read)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), "compiled model", private=True)


def _read(path: Path, key: str):
    """``(header, blobs)`` of an intact entry for `key`; raises ValueError on anything else."""
    st = path.lstat()  # the entry itself, never what a link points to
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise ValueError("entry is a link or not a regular file")
    if hasattr(os, "getuid"):  # machine code is loaded only from files this user wrote and nobody else may change
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise ValueError("entry not owned by this user, or writable by others")
    data = path.read_bytes()
    if len(data) < len(_MAGIC) + 8 + 32 or not data.startswith(_MAGIC):
        raise ValueError("not an entry")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise ValueError("checksum mismatch")
    i = len(_MAGIC)
    n = int.from_bytes(data[i:i + 8], "little")
    header = json.loads(data[i + 8:i + 8 + n].decode())
    if header.get("key") != key or header.get("format") != _FORMAT:
        raise ValueError("key mismatch")
    blobs, j = [], i + 8 + n
    for size in header["blobs"]:
        blobs.append(data[j:j + size])
        j += size
    if j != len(data) - 32:
        raise ValueError("length mismatch")
    return header, blobs


# ---------------------------------------------------------------------------------- store, load
_ENV_PREFIX = "_ZN08NumbaEnv"


def _encode_const(c):
    if c is None or isinstance(c, (bool, int, float, str)):
        return {"value": c}
    if isinstance(c, np.dtype):
        return {"dtype": c.str}
    raise TypeError(type(c).__name__)


def _decode_const(d):
    return np.dtype(d["dtype"]) if "dtype" in d else d["value"]


def _environments(module):
    """``{name: [module name, constants]}`` of the numba environments the code refers to, or None.

    A function that calls into Python (an object-mode block, an error message) reads its globals and
    constants from an environment object whose address numba writes into the code at load time, as
    numba's own cache does. Constants other than plain values and dtypes make the code uncacheable.
    """
    from numba.core.environment import Environment

    out = {}
    for gv in module.global_variables:
        if not gv.name.startswith(_ENV_PREFIX) or gv.is_declaration:
            continue
        env = Environment._memo.get(gv.name)
        if env is None:  # no live function uses it
            out[gv.name] = [None, []]
            continue
        try:
            out[gv.name] = [env.globals.get("__name__"), [_encode_const(c) for c in env.consts]]
        except TypeError:
            return None
    return out


def _set_environments(codegen, envs):
    import importlib

    from numba.core.environment import Environment

    kept = []
    for name, (modname, consts) in envs.items():
        env = Environment._memo.get(name)
        if env is None:
            namespace = {}
            if modname:
                try:
                    namespace = importlib.import_module(modname).__dict__
                except ImportError:
                    namespace = {}
            env = Environment(namespace)
            env.consts[:] = [_decode_const(c) for c in consts]
            env.env_name = name
            Environment._memo[name] = env
        codegen.set_env(name, env)
        kept.append(env)
    return kept
def _store(path: Path, key: str, compiled) -> bool:
    """Write `compiled` to `path`; False (nothing written) when its code cannot be reloaded elsewhere."""
    blobs, funcs = [], []
    for cfunc in (compiled.compiled_logp_func, compiled.compiled_expand_func):
        if isinstance(cfunc, _Loaded):  # loaded from an entry: stored as it was read
            funcs.append(cfunc.func)
            blobs += list(cfunc.blobs)
            continue
        lib = cfunc._library
        if lib.has_dynamic_globals or lib._reload_init:
            return False
        name, kind, (obj, bitcode) = lib.serialize_using_object_code()
        if kind != "object":
            return False
        module = lib._final_module
        externals = sorted({f.name for f in module.functions if f.is_declaration and not f.name.startswith("llvm.")}
                           | {g.name for g in module.global_variables if g.is_declaration})
        envs = _environments(module)
        if envs is None:
            return False
        funcs.append({"library": name, "wrapper": cfunc.native_name, "externals": externals, "envs": envs})
        blobs += [bytes(obj), bytes(bitcode)]
    shared = []
    for var, skey in compiled.shared_var_keys.items():
        arr = np.array(compiled.shared_data[skey], order="C")  # keeps rank 0 (ascontiguousarray would not)
        shared.append({"name": var.name, "key": skey, "ndim": int(var.ndim), "dtype": arr.dtype.str,
                       "shape": list(arr.shape)})
        blobs.append(arr.tobytes())
    x, logp, grad = _check_point(compiled)
    if not np.isfinite(logp) or not np.all(np.isfinite(grad)):
        return False
    names, slices, shapes = compiled.shape_info
    header = {
        "key": key, "format": _FORMAT, "funcs": funcs, "shared": shared,
        "n_dim": int(compiled.n_dim), "n_expanded": int(compiled.n_expanded),
        "shape_info": [list(names), [[int(s.start), int(s.stop)] for s in slices], [list(map(int, s)) for s in shapes]],
        "dims": {k: list(v) for k, v in (compiled.dims or {}).items()},
        "coords": {k: np.asarray(v).tolist() for k, v in (compiled._coords or {}).items()},
        "reparameterized_names": compiled.reparameterized_names,
        "check": {"x": x.tolist(), "logp": logp.hex(), "grad": [float(g).hex() for g in grad]},
    }
    _write(path, header, blobs)
    return True


def _load(path: Path, key: str, model):
    """The compiled model of an intact, verified entry; raises on anything else."""
    from nutpie.compile_pymc import CompiledPyMCModel, make_user_data
    from numba.core.registry import cpu_target

    import llvmlite.binding as ll

    header, blobs = _read(path, key)
    context = cpu_target.target_context
    context.refresh()  # numba's runtime and helper symbols, as numba does before loading its own cache
    codegen = context.codegen()
    loaded = []
    for k, f in enumerate(header["funcs"]):
        # LLVM aborts the process on a symbol it cannot resolve: check them all first.
        missing = [name for name in f["externals"] if not ll.address_of_symbol(name)]
        if missing:
            raise ValueError(f"unresolved symbols {missing[:3]}")
        lib = codegen.unserialize_library((f["library"], "object", (blobs[2 * k], blobs[2 * k + 1])))
        envs = _set_environments(codegen, f["envs"])
        loaded.append(_Loaded(int(lib.get_pointer_to_function(f["wrapper"])), (lib, envs), f,
                              (blobs[2 * k], blobs[2 * k + 1])))
    if not all(fn.address for fn in loaded):
        raise ValueError("function not found")
    shared_var_keys, shared_data = {}, {}
    for s, blob in zip(header["shared"], blobs[4:]):
        arr = np.frombuffer(blob, dtype=np.dtype(s["dtype"])).reshape(s["shape"]).copy()
        arr.flags.writeable = False
        shared_var_keys[_SharedVar(s["name"], s["ndim"])] = s["key"]
        shared_data[s["key"]] = arr
    names, slices, shapes = header["shape_info"]
    shape_info = (names, [slice(a, b) for a, b in slices], [tuple(s) for s in shapes])
    import pandas as pd

    dims = {k: tuple(v) for k, v in header["dims"].items()}
    coords = {k: pd.Index(v) for k, v in header["coords"].items()}
    compiled = CompiledPyMCModel(
        _n_dim=header["n_dim"], dims=dims, _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(names, shape_info[2])},
        compiled_logp_func=loaded[0], compiled_expand_func=loaded[1],
        initial_point_func=_initial_point_fn(model, shape_info),
        shared_data=shared_data, shared_var_keys=shared_var_keys,
        user_data=make_user_data(shared_var_keys, shared_data),
        n_expanded=header["n_expanded"], shape_info=shape_info, logp_func=None, expand_func=None,
        reparameterized_names=header["reparameterized_names"],
    )
    check = header["check"]
    x, logp, grad = _check_point(compiled)
    if (not np.array_equal(x, np.asarray(check["x"])) or logp.hex() != check["logp"]
            or [float(g).hex() for g in grad] != check["grad"]):
        raise ValueError("the loaded code does not reproduce its stored log density")
    return compiled


def compile_model(graph, n_groups, cache=None, on_compile=None):
    """nutpie's compiled model for `graph`: from the cache folder when an intact entry is there, else compiled.

    `on_compile`, when given, is called with no arguments just before a compile (not for a cache hit).
    Processes that share a cache folder compile one structure one at a time (an advisory lock per
    structure, :func:`bayescale.base.files.folder_lock`): a ``fit_many`` worker that waited loads what
    the first one stored instead of compiling it again.

    Returns
    -------
    compiled : nutpie CompiledPyMCModel
    source : str
        ``"disk"`` (loaded), ``"process"`` (loaded before in this process for a graph of the same
        structure), ``"compiled"`` (compiled and stored), or ``"compiled, not cached"``.
    """
    folder = cache_dir(cache)
    if folder is None:
        return _compile(graph, on_compile), "compiled, not cached"
    key = structure_key(graph, n_groups)
    path = folder / f"{key[:40]}.bin"
    with _LOCK:
        if key in _LOADED:  # another graph of the same structure in this process: its code is loaded
            import dataclasses

            return dataclasses.replace(_LOADED[key], initial_point_func=_initial_point_fn(
                graph.pymc_model, _LOADED[key].shape_info)), "process"
        loaded = _try_load(path, key, graph)
    if loaded is not None:
        return loaded, "disk"
    with contextlib.ExitStack() as stack:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stack.enter_context(folder_lock(folder, f".{key[:40]}.lock"))
        except (OSError, FileWriteError):  # a read-only cache folder: compile without waiting for anyone
            pass
        else:  # another process may have compiled this structure while we waited
            with _LOCK:
                loaded = _try_load(path, key, graph)
            if loaded is not None:
                return loaded, "disk"
        compiled = _compile(graph, on_compile)
        try:
            if _store(path, key, compiled):
                return compiled, "compiled"
        except Exception:  # a read-only or full disk: the fit goes on uncached
            pass
        return compiled, "compiled, not cached"


def _try_load(path, key, graph):
    """The verified entry at `path` (kept in the process), or None; call holding ``_LOCK``."""
    if not path.is_file():
        return None
    try:
        _LOADED[key] = _load(path, key, graph.pymc_model)
        return _LOADED[key]
    except Exception:  # damaged, stale or foreign: never trusted, rebuilt
        return None


def _compile(graph, on_compile):
    import warnings

    import nutpie

    if on_compile is not None:
        on_compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nutpie.compile_pymc_model(graph.pymc_model, var_names=list(graph.published))
