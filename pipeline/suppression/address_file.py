"""Addresses from a file an operator hands us (`suppression add --from-file`): one address per
line, or a CSV with an address column, as a CRM or Excel writes it.

Reads the file (or bytes already read, e.g. standard input); writes nothing. UTF-8 (with or
without a BOM), Shift_JIS (cp932, what Excel on Japanese Windows saves) or UTF-16 with a BOM
(Excel's "Unicode Text"); commas or, when the first line has tabs and no comma, tabs; blank lines and lines
starting with # are skipped. Every way the file cannot be used is an InputError naming it.
Called by the CLI; the addresses are checked and added by store.add_many.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..core.errors import InputError

# Header names of the address column (case and spaces ignored).
ADDRESS_HEADERS = ("address", "email", "e-mail", "email_address", "mail", "mail_address",
                   "メールアドレス", "アドレス")
MAX_BYTES = 512 * 1024 * 1024  # a list file larger than this is a mistake, not a list


def read_addresses(source: str | os.PathLike | bytes, name: str | None = None) -> list[str]:
    """The addresses in `source` (a path, or the file's bytes with `name` for messages), in order."""
    if isinstance(source, bytes):
        data, name = source, name or "the input"
    else:
        name = name or str(source)
        data = _read(Path(source), name)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its BOM: Excel's "Unicode Text" (tab-separated)
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name} starts as UTF-16 text but is not: save it as UTF-8 (CSV UTF-8 in Excel)") from None
    elif b"\x00" in data:
        raise InputError(f"{name} is not a text file (it holds NUL bytes): give a CSV or one address per line")
    else:
        text = _decode(data, name)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{name} holds no addresses")
    # tab-separated (Excel's "Unicode Text" and "Text (Tab delimited)") when the first line has
    # tabs and no commas; else CSV
    delimiter = "\t" if "\t" in lines[0] and "," not in lines[0] else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((i for i, cell in enumerate(header) if cell in ADDRESS_HEADERS), None)
    if column is not None:
        body = rows[1:]
        where = f"column {rows[0][column].strip()!r}"
    elif all(len(r) == 1 for r in rows):
        column, body, where = 0, rows, "line"
    else:
        raise InputError(f"{name} has several columns and none named address or email: name the "
                         "address column in the first line (address,...), or give one address per line")
    out = []
    for i, row in enumerate(body, 2 if body is not rows else 1):
        value = row[column].strip() if column < len(row) else ""
        if not value:
            raise InputError(f"{name}: row {i} has no address in {where}")
        out.append(value)
    if not out:
        raise InputError(f"{name} holds no addresses (only a header)")
    return out


def _read(path: Path, name: str) -> bytes:
    if "\x00" in str(path):
        raise InputError(f"{name!r} is not a file name (it holds a NUL character)")
    try:
        if path.is_dir():
            raise InputError(f"{name} is a directory: give the file of addresses")
        with open(path, "rb") as fh:  # a FIFO (`<(crm-export)`) is read like a file
            data = fh.read(MAX_BYTES + 1)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{name} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(f"{name} is larger than {MAX_BYTES // (1024 * 1024)} MB: not a list of addresses")
    return data


def _decode(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name} is neither UTF-8 nor Shift_JIS text: save it as UTF-8 (CSV UTF-8 in Excel)")
