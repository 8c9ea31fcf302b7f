"""Reading a user's table (csv, jsonl, parquet) with errors that name the file, the line and the fix."""

from __future__ import annotations

import io
from pathlib import Path

from mossforge.errors import InputError

BOM = b"\xef\xbb\xbf"  # what Excel ("CSV UTF-8") and Notepad put before UTF-8 text
FORMATS = {".csv": "csv", ".jsonl": "ndjson", ".ndjson": "ndjson", ".parquet": "parquet"}


def first_non_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first byte sequence in `path` that is not UTF-8, or None."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return data[:error.start].count(b"\n") + 1, data[error.start]
    return None


def check_utf8(path: Path, error: type[InputError] = InputError) -> None:
    """Raise `error` naming `path`, the line and the byte, with the `iconv` fix, when `path` is not
    UTF-8 text. Every reader of a user's text file (tables, configs, reference lists) uses this."""
    if (bad := first_non_utf8(path)) is not None:
        line, byte = bad
        raise error(f"{path}, line {line}: byte 0x{byte:02x} is not UTF-8; save the file as UTF-8 "
                    f"(e.g. `iconv -f latin1 -t utf-8 {path} > fixed{Path(path).suffix}`) and run again")


def check_not_folder(path: Path, what: str, error: type[InputError] = InputError) -> None:
    """Raise `error` when `path` is a folder where a file (`what`, e.g. "a .csv file") is expected."""
    if Path(path).is_dir():
        raise error(f"{path} is a folder; give {what}")


def read_table(path: Path):
    """A polars DataFrame of `path`; `InputError` naming the file (and line) when it cannot be read."""
    import polars as pl

    path = Path(path)
    check_not_folder(path, "a .csv, .jsonl or .parquet file")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unsupported format {path.suffix!r} (use .csv, .jsonl or .parquet)")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): give a {kind} file with "
                         + ("a header row and rows" if kind == "csv" else "rows"))
    if kind != "parquet":
        check_utf8(path)
    try:
        if kind == "ndjson" and (data := path.read_bytes()).startswith(BOM):  # polars: a JSON error
            return pl.read_ndjson(io.BytesIO(data[len(BOM):]))
        return getattr(pl, f"read_{kind}")(path)  # (polars' CSV reader skips a BOM itself)
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        if kind == "ndjson" and (bad := first_non_json_line(path)) is not None:
            line, why = bad
            raise InputError(f"{path}, line {line}: not a JSON object ({why}); each line of a .jsonl "
                             "file is one JSON object, e.g. {\"answer\": \"...\"}") from None
        raise InputError(f"{path} could not be read as {kind}: {str(error).splitlines()[0][:300]}") from None


def first_non_json_line(path: Path) -> tuple[int, str] | None:
    """(line number, why) of the first non-blank line of `path` that is not a JSON object, or None.
    (polars says only "InternalError(TapeError) at character 0".)"""
    import json

    with open(path, encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                return number, error.msg.lower()
            if not isinstance(value, dict):
                return number, f"a JSON {type(value).__name__}"
    return None
