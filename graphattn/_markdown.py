"""Markdown pipe tables, written one way for every report of the package."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["table_lines"]


def table_lines(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    align: Sequence[str] | None = None,
    compact: bool = False,
) -> list[str]:
    """The lines of a Markdown table: header, rule, one line per row of formatted cells.

    Parameters
    ----------
    header : sequence of str
        The column names.
    rows : iterable of sequences of str
        The cells of each row, already formatted.
    align : sequence of str, optional
        The rule cell of each column (``"---"``, ``"---:"``, ...); default ``"---"``.
    compact : bool
        A rule without spaces, ``|---|---|`` (else ``| --- | --- |``).

    Examples
    --------
    >>> print("\\n".join(table_lines(["a", "b"], [["1", "2"]])))
    | a | b |
    | --- | --- |
    | 1 | 2 |
    >>> table_lines(["a", "b"], [], compact=True)[1]
    '|---|---|'
    """
    rule = list(align) if align is not None else ["---"] * len(header)
    rule_line = "|" + "|".join(rule) + "|" if compact else _line(rule)
    return [_line(header), rule_line, *(_line(cells) for cells in rows)]


def _line(cells: Sequence[str]) -> str:
    """``| a | b |``."""
    return "| " + " | ".join(cells) + " |"
