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
import re
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
    text = decode_list_bytes(data, name)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{name} holds no addresses")
    # tab-separated (Excel's "Unicode Text" and "Text (Tab delimited)") when the first line has
    # tabs and no commas; else CSV
    delimiter = "\t" if "\t" in lines[0] and "," not in lines[0] else ","
    rows = csv_rows("\n".join(lines), delimiter, name)
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


# a line inside a quoted cell that reads like a row of the list: "b@au.com,Hanako"
_SWALLOWED_ROW = re.compile(r"^\s*[^\s,\t\"]+@[^\s,\t\"]+\s*(?:[,\t]|$)")


def csv_rows(text: str, delimiter: str, name: str) -> list[list[str]]:
    """The non-empty rows of a list of addresses (`name` for messages); the one CSV reading of
    `suppression add --from-file` and of the sender's recipient lists.

    A stray double quote (山田,"太郎 typed by hand) opens a quoted cell that runs on over the next
    lines: read leniently, those rows, addresses and all, became one cell and their addresses were
    silently left out (recipients not queued, opt-outs not suppressed). Strict reading refuses a
    quote left open; a closed one whose cell holds lines that read like rows of addresses is
    refused too (InputError, with the line), as is a cell over the csv module's field limit (it
    was an internal error)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    rows = []
    try:
        for r in reader:
            for cell in r:
                if "\n" in cell or "\r" in cell:
                    swallowed = [ln for ln in cell.splitlines()[1:] if _SWALLOWED_ROW.match(ln)]
                    if swallowed:
                        raise InputError(
                            f"{name} has a quoted cell ending on line {reader.line_num} that runs over "
                            f"several lines and holds what look like rows of addresses ({swallowed[0].strip()[:60]}"
                            f"{' …' if len(swallowed) > 1 else ''}): a stray double quote (\") before it? Those "
                            "addresses would be lost; fix the quote (or remove it) and try again")
            if any(c.strip() for c in r):
                rows.append(r)
    except csv.Error as exc:
        raise InputError(f"{name} cannot be read as CSV at line {reader.line_num}: {exc} (a stray "
                         "double quote (\")? Quote a cell whole, \"like this\", or not at all)") from None
    return rows


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


def decode_list_bytes(data: bytes, name: str) -> str:
    """The text of a list of addresses as offices save it: UTF-8 (with or without BOM), Shift_JIS
    (cp932, Excel on Japanese Windows) or UTF-16 with its BOM (Excel's "Unicode Text"); the one
    decoding of `suppression add --from-file` and of the sender's recipient lists."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its BOM: Excel's "Unicode Text" (tab-separated)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name} starts as UTF-16 text but is not: save it as UTF-8 (CSV UTF-8 in Excel)") from None
    if b"\x00" in data:
        raise InputError(f"{name} is not a text file (it holds NUL bytes): give a CSV or one address per line")
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name} is neither UTF-8 nor Shift_JIS text: save it as UTF-8 (CSV UTF-8 in Excel)")
