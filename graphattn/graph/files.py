"""Token graphs in files: readable JSON for small graphs, compressed NPZ for large ones.

Both formats hold the same metadata (format name and version, sizes, labels,
name) beside the edge list; nothing is pickled, and a file is written whole or
not at all (:func:`graphattn._files.atomic_write`). The functions back
:meth:`TokenGraph.save` and :meth:`TokenGraph.load`.

Examples
--------
>>> import tempfile, pathlib
>>> from graphattn.graph import TokenGraph
>>> with tempfile.TemporaryDirectory() as d:
...     load(TokenGraph, save(TokenGraph([[0], [1]]), pathlib.Path(d) / "g.npz")).num_edges
1
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphattn._files import atomic_write

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "save"]

FORMAT_NAME = "graphattn.TokenGraph"
FORMAT_VERSION = 1
SUFFIXES = (".json", ".npz")


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"path must end in .json or .npz, got {path.name!r}")
    return suffix


def save(graph: TokenGraph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` (``.json`` or ``.npz``); see :meth:`TokenGraph.save`."""
    path = Path(path)
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "num_nodes": graph.num_nodes,
        "num_src_nodes": graph.num_src_nodes,
        "cross": graph.is_cross,
        "name": graph.name,
        "tokens": graph.tokens,
        "src_tokens": graph.src_tokens if graph.is_cross else None,
    }
    if _check_suffix(path) == ".json":
        meta["edge_index"] = graph.edge_index.tolist()
        text = json.dumps(meta)
        return atomic_write(path, lambda tmp: tmp.write_text(text))
    def write_npz(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: savez would append ".npz" to a name
            np.savez_compressed(
                f, meta=np.array(json.dumps(meta)), edge_index=graph.edge_index.numpy()
            )

    return atomic_write(path, write_npz)


def load(cls: type[TokenGraph], path: str | os.PathLike) -> TokenGraph:
    """Read a ``cls`` graph written by :func:`save`; see :meth:`TokenGraph.load`."""
    path = Path(path)
    meta, edge_index = _read(path)
    _check_header(path, meta)
    if edge_index is None:
        raise ValueError(f"{path} holds an invalid graph: it has no edge_index")
    try:
        cross = bool(meta["cross"])
        return cls(
            edge_index if len(edge_index) else [[], []],
            meta["num_nodes"],
            num_src_nodes=meta["num_src_nodes"] if cross else None,
            tokens=meta.get("tokens"),
            src_tokens=meta.get("src_tokens") if cross else None,
            name=meta.get("name"),
            cross=cross,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} holds an invalid graph: {err}") from err


def _read(path: Path) -> tuple[dict[str, Any], Any]:
    """The metadata and the edge list (None if absent) of a graph file.

    A file that cannot be parsed raises ``ValueError``; a missing one
    ``FileNotFoundError``.
    """
    try:
        if _check_suffix(path) == ".json":
            meta = json.loads(path.read_text())
            edge_index = meta.get("edge_index") if isinstance(meta, dict) else None
        else:
            _check_npz_sizes(path)
            with np.load(path, allow_pickle=False) as z:
                meta, edge_index = json.loads(str(z["meta"])), z["edge_index"]
        if not isinstance(meta, dict):
            raise ValueError("its metadata is not a JSON object")
        return meta, edge_index
    except (OSError, ValueError, KeyError, EOFError, RecursionError, zipfile.BadZipFile) as err:
        if isinstance(err, FileNotFoundError):
            raise
        reason = "nested too deeply" if isinstance(err, RecursionError) else err
        raise ValueError(f"{path} is not a readable graphattn graph file: {reason}") from err


def _check_npz_sizes(path: Path) -> None:
    """Raise unless every array's header claims no more bytes than its file member holds.

    Read before ``np.load`` allocates: a 200-byte file must not ask for terabytes.
    """
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            with z.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = {(1, 0): np.lib.format.read_array_header_1_0}
                header = read.get(version, np.lib.format.read_array_header_2_0)
                shape, _, dtype = header(f)
            claimed = math.prod(shape) * dtype.itemsize
            if claimed > info.file_size:
                raise ValueError(
                    f"{info.filename} claims {claimed} bytes but holds {info.file_size}"
                )


def _check_header(path: Path, meta: dict[str, Any]) -> None:
    """Raise unless ``meta`` names this format and the version this graphattn reads."""
    if meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a graphattn graph file (format={meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has graph format version {meta.get('version')!r}; "
            f"this graphattn reads version {FORMAT_VERSION}"
        )
