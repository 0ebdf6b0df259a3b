"""The folder a batch of fits writes and resumes from (:func:`bayescale.many.batch.fit_many`): keys, seeds, the
index and its lock.

Named ``checkpoints`` up to version 0.1; checkpoint data now means only the rows of one training run.
"""


from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..base.errors import BayescaleError, FileFormatError
from ..base.validation import check_seed as _check_seed
from ..base.files import atomic_write, check_write_path, folder_lock, make_folder, remove_stale_temporaries
from .io import load


__all__ = ["key_seed", "INDEX_NAME"]

SETTING_NAMES = ("draws", "tune", "chains", "cores", "sampler", "target_accept")
INDEX_FORMAT = 1
INDEX_NAME = "index.json"
# ---------------------------------------------------------------------- keys, seeds
def plain_value(value):
    """A key element as a plain Python value (for JSON, seeds and file names)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return str(value)
    return value


def key_json(key: tuple) -> str:
    return json.dumps([plain_value(k) for k in key], default=str, ensure_ascii=True)


def key_seed(random_seed: int, key) -> int:
    """The seed of one key's fit, derived from the batch seed and the key.

    The same batch seed and key always give the same fit, whatever the order
    or the executor the keys run on.

    Examples
    --------
    >>> key_seed(1, "task-a") == key_seed(1, "task-a") != key_seed(1, "task-b")
    True
    """
    random_seed = _check_seed(random_seed)
    key = key if isinstance(key, tuple) else (key,)
    digest = hashlib.sha256(f"{int(random_seed)}|{key_json(key)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**31 - 1)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(key: tuple) -> str:
    """A filesystem-safe, collision-free file name for a key."""
    slug = "__".join(_UNSAFE.sub("_", str(plain_value(k))) for k in key).strip("._")[:80] or "key"
    tag = hashlib.sha256(key_json(key).encode()).hexdigest()[:10]
    return f"{slug}-{tag}.nc"


def frame_digest(frame: pd.DataFrame) -> str:
    """Fingerprint of a key's rows: a checkpoint is reused only for the same data."""
    h = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    try:
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists ...): fall back to the text form
        h.update(frame.to_csv().encode())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------- checkpoints
class ResumeFolder:
    """A folder of ``<key>.nc`` fits plus ``index.json``; each written atomically.

    Several processes may share a folder (with different keys): every write
    happens under the folder's lock (:func:`bayescale.base.files.folder_lock`),
    and the index is re-read there and this process's changes are replayed
    on it, so no writer drops another's entries.
    """

    def __init__(self, folder, spec, settings, random_seed, by, fresh_seed=None):
        self.folder = make_folder(folder, "checkpoint_dir")
        self.index_path = self.folder / INDEX_NAME
        head = {"model": spec, "settings": {k: settings[k] for k in SETTING_NAMES if k != "cores"},
                "by": list(by)}
        self.head = json.loads(json.dumps(head, default=str))  # as stored: tuples become lists
        self._pending = []  # this process's changes, replayed on the on-disk index at each write
        with folder_lock(self.folder):
            self.index = self._read_index()
            self._check_head(self.index)
            if self.index and random_seed is not None and self.index.get("random_seed") != random_seed:
                raise BayescaleError(
                    f"checkpoint folder {str(self.folder)!r} was made with random_seed="
                    f"{self.index.get('random_seed')}; got random_seed={random_seed}. Pass the same seed (or None) "
                    "to resume, or use a new folder")
            self.random_seed = self.index.get("random_seed", random_seed if random_seed is not None else fresh_seed)
            # No writer holds the lock, so no save is in progress here: temporary files are leftovers of killed
            # saves, whatever their age.
            remove_stale_temporaries(self.folder, older_than=-1.0)
            if not self.index:  # claim the folder: a second process started on it adopts this seed
                self._write_index()

    def _check_head(self, index):
        old = {k: index.get(k) for k in self.head}
        if index and old != self.head:
            changed = [k for k in self.head if old[k] != self.head[k]]
            raise BayescaleError(
                f"checkpoint folder {str(self.folder)!r} holds fits of a different {' and '.join(changed)} "
                f"({', '.join(f'{k}: {old[k]!r}' for k in changed)}); use a new folder, or delete it to refit")

    def _read_index(self) -> dict:
        if not self.index_path.exists():
            return {}
        if not self.index_path.is_file():  # reading a FIFO would block forever

            check_write_path(self.index_path, "checkpoint index")  # names what is there instead
        try:
            index = json.loads(self.index_path.read_text())
            check_index(index)
        except (ValueError, OSError, TypeError) as exc:
            raise BayescaleError(f"{str(self.index_path)!r} is not a readable fit_many index ({exc}); "
                                 "use a new checkpoint folder") from None
        return index

    def reuse(self, key, digest, seed, model):
        """The checkpointed fit of `key`, or None when it must be (re)done."""
        path = self.folder / _file_name(key_tuple(key))
        if not path.is_file():
            return None
        try:
            fit = load(path)
        except FileFormatError:
            return None
        attrs = fit.idata.attrs
        if (attrs.get("batch_key") != key_json(key_tuple(key)) or attrs.get("batch_data") != digest
                or int(fit.settings.get("random_seed", -1)) != seed):
            return None
        fit.model = model
        # A run killed between writing the fit and the index leaves a good fit the index lacks.
        self._pending.append(("fit", key, path.name, self._entry(key, fit)))
        return fit

    def _entry(self, key, fit) -> dict:
        return {"key": json.loads(key_json(key_tuple(key))), "data": fit.idata.attrs.get("batch_data", ""),
                "random_seed": int(fit.settings["random_seed"]), "converged": bool(fit.converged)}

    def store(self, key, fit):
        name = _file_name(key_tuple(key))
        with folder_lock(self.folder):
            fit.save(self.folder / name)
            self._pending.append(("fit", key, name, self._entry(key, fit)))  # listed only once it is on disk
            self._write_index()

    def record_error(self, key, text):
        self._pending.append(("error", key, None, text))
        self.write_index()

    def write_index(self):
        with folder_lock(self.folder):
            self._write_index()

    def _write_index(self):
        """Merge this process's changes into the index on disk and write it; the caller holds the lock."""
        index = self._read_index()
        self._check_head(index)
        if index.get("random_seed") not in (None, self.random_seed):
            raise BayescaleError(
                f"checkpoint folder {str(self.folder)!r} was claimed by another batch with random_seed="
                f"{index.get('random_seed')} while this one ran with random_seed={self.random_seed}; "
                "use one seed (or None) for every batch that shares a folder")
        index.update(self.head)
        index.setdefault("fits", {})
        index.setdefault("errors", {})
        for op, key, name, value in self._pending:
            text_key = key_json(key_tuple(key))
            if op == "fit":
                index["fits"][name] = value
                index["errors"].pop(text_key, None)
            else:
                index["errors"][text_key] = value
        index["bayescale_batch"] = INDEX_FORMAT
        index["random_seed"] = self.random_seed
        text = json.dumps(index, indent=1, default=str)
        atomic_write(self.index_path, lambda tmp: Path(tmp).write_text(text), "checkpoint index")
        self._pending.clear()
        self.index = index


def check_index(index) -> None:
    """Raise ValueError unless `index` is a fit_many index this version reads."""
    fmt = index.get("bayescale_batch") if isinstance(index, dict) else None
    if isinstance(fmt, bool) or not isinstance(fmt, int):
        raise ValueError("not a bayescale fit_many index (no 'bayescale_batch' format number)")
    if fmt > INDEX_FORMAT:
        raise ValueError(f"written in fit_many index format {fmt}; this version reads format <= {INDEX_FORMAT}. "
                         "Upgrade bayescale")


def one_line(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def key_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)
