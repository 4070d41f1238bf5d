"""Reading SUMO's XML files, plain or gzipped."""

from __future__ import annotations

import gzip
import io
import os


def open_xml(path: str | os.PathLike[str]) -> gzip.GzipFile | io.BufferedReader:
    """Open an XML file for parsing, gunzipping it when its first bytes say it is gzip."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")
