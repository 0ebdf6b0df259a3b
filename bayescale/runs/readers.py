"""Reading a table of runs from a file: CSV (its encoding, separator and decimal mark sniffed) or Parquet.

A file that cannot be read is one :class:`~bayescale.base.errors.DataError` naming it and what is wrong (a
folder, a device, an unknown suffix, lines with more fields than the header), before any check of its
values (:func:`bayescale.load_runs`).
"""

from __future__ import annotations

import csv
import os
import re
import stat
import warnings
from pathlib import Path

import pandas as pd

from ..base.errors import DataError

__all__ = ["read_table", "MAX_LISTED"]


#: Most problems one error lists (the rest are counted).
MAX_LISTED = 50


_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet}


def read_table(source) -> tuple[pd.DataFrame, str, str]:
    """The table of `source` (a DataFrame, or a .csv or .parquet path), its name in errors, a note on row numbers."""
    if isinstance(source, pd.DataFrame):
        return source, "Run data", ""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_runs() needs a DataFrame, RunData or file path, not {type(source).__name__}")
    path = Path(source)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError([f"{str(path)!r}: unknown file type {path.suffix!r}; "
                         f"accepted extensions: {', '.join(_READERS)}"])
    _check_regular_file(path)
    if reader is pd.read_csv:
        frame = _read_csv(path)
    else:
        try:
            frame = reader(path)
        except Exception as exc:  # parser, encoding and pyarrow errors alike
            raise DataError([f"{str(path)!r} could not be read: {exc}"]) from exc
    note = " (rows numbered from 0, after the header line)" if path.suffix.lower() == ".csv" else ""
    return frame, path.name, note


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_regular_file(path: Path) -> None:
    """Refuse a missing path, or one that is not a regular file, without opening it (a FIFO would block)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError([f"{str(path)!r}: no such file"]) from None
    except OSError as exc:
        raise DataError([f"{str(path)!r} could not be read: {exc.strerror or exc}"]) from None
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
        raise DataError([f"{str(path)!r} is {kind}, not a file of runs; give the path of a .csv or .parquet file"])


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV, refusing rows with more fields than the header and repeated header names.

    pandas would take the surplus fields of the first row as the index, shifting every value one
    column left, and rename a repeated header ``N`` to ``N.1``.
    """
    shown = str(path)
    encoding, sep, decimal = _dialect(path)
    opts = {"encoding": encoding, "sep": sep, "decimal": decimal}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, **opts)
            frame = pd.read_csv(path, index_col=False, **opts)
    except (pd.errors.ParserWarning, pd.errors.ParserError) as exc:
        ragged = _ragged(path, encoding, sep)  # a longer first row warns, a longer later row fails to tokenize
        if ragged:
            raise DataError(ragged, header=f"{shown!r} has rows with more fields than its header "
                                           "(lines numbered from 1, the header is line 1):") from None
        raise DataError([f"{shown!r} could not be read: {exc}"]) from None
    except pd.errors.EmptyDataError as exc:
        raise DataError([f"{shown!r} could not be read: {exc}"]) from None
    except UnicodeDecodeError as exc:  # past the first 64 KiB
        raise DataError([f"{shown!r} is not {encoding} text throughout ({exc.reason} at byte {exc.start} of a "
                         "block); save the file as UTF-8, e.g. in pandas df.to_csv(path, encoding='utf-8')"]) from None
    except Exception as exc:  # encoding and other errors alike
        raise DataError([f"{shown!r} could not be read: {exc}"]) from exc
    names = [str(v) for v in header.iloc[0]] if len(header) else []
    seen: dict[str, list[int]] = {}
    for k, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(k)
    dupes = [f"column name {name!r} appears {len(at)} times in the header (fields {', '.join(map(str, at))}); "
             "rename all but one" for name, at in seen.items() if len(at) > 1 and name != ""]
    if dupes:
        raise DataError(dupes, header=f"{shown!r} has a repeated column name:")
    return frame


#: Byte-order marks and the encodings they announce (longest first: UTF-32's starts like UTF-16's).
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_SNIFF_BYTES = 1 << 16
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+([eE][-+]?\d+)?\s*$")


def _dialect(path: Path) -> tuple[str, str, str]:
    """(encoding, field separator, decimal mark) of a CSV, from its first 64 KiB.

    A byte-order mark names the encoding (UTF-8, UTF-16, UTF-32); without one, NUL bytes in every other
    position mean UTF-16 without a mark, and anything else must be UTF-8. A header without commas but with
    semicolons (or tabs) separates fields by them; with semicolons, numbers written ``3,14`` use a decimal
    comma (the spreadsheet export of many locales).
    """
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if encoding is None and len(head) >= 4 and head[1::2].count(0) > len(head) // 4:
        encoding = "utf-16-le"
    elif encoding is None and len(head) >= 4 and head[0::2].count(0) > len(head) // 4:
        encoding = "utf-16-be"
    if encoding is None:
        encoding = "utf-8"
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(head) < _SNIFF_BYTES or exc.start < len(head) - 3:  # not a character cut by the sample's end
                raise DataError([f"{str(path)!r} is not UTF-8 text: byte 0x{head[exc.start]:02x} at offset "
                                 f"{exc.start} ({exc.reason}); save the file as UTF-8 (or UTF-16 with a byte-order "
                                 "mark), e.g. in pandas df.to_csv(path, encoding='utf-8')"]) from None
    text = head.decode(encoding, errors="ignore")
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    sep = ","
    if "," not in first:
        sep = ";" if ";" in first else ("\t" if "\t" in first else ",")
    decimal = "."
    if sep == ";" and any(_DECIMAL_COMMA.match(field) for line in lines[1:50] for field in line.split(";")):
        decimal = ","
    return encoding, sep, decimal


def _ragged(path: Path, encoding: str = "utf-8", sep: str = ",") -> list[str]:
    """Lines of a CSV with more fields than the header (only called once pandas found one)."""
    found, total = [], 0
    with open(path, newline="", encoding=encoding, errors="replace") as f:
        reader = csv.reader(f, delimiter=sep)
        width = None
        for row in _rows(reader):
            if width is None:
                if row:
                    width = len(row)
                continue
            if len(row) > width:
                total += 1
                if len(found) < MAX_LISTED:
                    found.append(f"line {reader.line_num}: {len(row)} fields, but the header names {width}")
    if total > len(found):
        found.append(f"... and {total - len(found)} more")
    return found


def _rows(reader):
    """The rows of a csv reader, stopping quietly at the first one Python's csv module cannot split."""
    try:
        yield from reader
    except csv.Error:
        return
