"""``draw_rollout``: a rollout matrix as relevance, on a scale a sink column does not flatten.

Rollout (:func:`graphattn.flow.attention_rollout`) gives, for every output
token ``i``, the share of each input token ``j`` in it. In BERT-like models
one column (``[CLS]``, a sink) holds most of every row, and on a linear scale
every other cell looks alike. Here the colour scale tops at the largest
share outside that column (which then saturates, the colour bar's arrow
says so), follows a power scale (``gamma=0.5``: square root), and the title
says which column dominates and by how much. ``method=`` names what was
rolled out (attention weights, or ALTI, GlobEnc, ... contributions) in the title.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm

from graphattn._validate import check_bool
from graphattn.flow.batch import check_example
from graphattn.plot import style
from graphattn.plot.graph import set_title

__all__ = ["METHODS", "draw_rollout"]

METHODS = {  # what was rolled out: the title's words, by flow.contributions' method names
    "attention": "attention rollout",
    "alti": "ALTI rollout (contributions composed over layers)",
    "globenc": "GlobEnc rollout (contributions composed over layers)",
    "value_zeroing": "Value Zeroing rollout (contributions composed over layers)",
    "grad_attention": "gradient x attention rollout",
    "attnlrp": "AttnLRP rollout (edge relevances composed over layers)",
}


def draw_rollout(
    rollout: torch.Tensor,
    tokens: Sequence[str] | None = None,
    *,
    example: int | None = None,
    src_tokens: Sequence[str] | None = None,
    gamma: float = 0.5,
    clip_sink: bool = True,
    method: str = "attention",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """The rollout matrix: row ``i`` an output token, column ``j`` an input, colour its relevance.

    Parameters
    ----------
    rollout : tensor (N, M) or (B, N, M)
        ``R[i, j]``: the share of input ``j`` in output ``i`` (rows of
        :func:`graphattn.flow.attention_rollout`, non-negative); a batch of
        them is what the rollout of batched layers returns.
    tokens : sequence of str, optional
        Labels of the outputs (rows), and of the inputs when ``src_tokens`` is None.
    example : int, optional
        Which example of a batched rollout to draw; may be left out for one
        rollout or a batch of one.
    src_tokens : sequence of str, optional
        Labels of the inputs (columns).
    gamma : float
        Exponent of the colour scale in (0, 1]: 1 is linear, 0.5 a square root
        (small shares stay visible beside a dominant column).
    clip_sink : bool
        Top the colour scale at the largest share outside the column with
        the largest mean share (that column saturates); False: at the largest share.
    method : str
        What was rolled out, for the title: ``"attention"`` (weights), or the
        :func:`graphattn.flow.contributions` method of the layers
        (``"alti"``, ``"globenc"``, ``"value_zeroing"``, ``"grad_attention"``,
        ``"attnlrp"``).
    ax : matplotlib Axes, optional
        Where to draw.
    title : str, optional
        Title (default: what is drawn).

    Returns
    -------
    matplotlib.axes.Axes
        Its image (gid ``"rollout"``) holds ``R``; the colour bar is labelled
        relevance. A second title line names the column holding the largest
        mean share.

    Raises
    ------
    TypeError, ValueError
        For a rollout that is not a finite, non-negative ``(N, M)`` tensor
        (or a batch of them, without ``example`` for more than one),
        labels of the wrong length, ``gamma`` outside (0, 1] or an unknown ``method``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> r = torch.tensor([[1.0, 0.0], [0.7, 0.3]])
    >>> ax = draw_rollout(r, ["[CLS]", "hi"])
    >>> "“[CLS]” holds 85%" in ax.get_title(), ax.images[0].norm.vmax  # [CLS] saturates
    (True, 0.3)
    >>> draw_rollout(r, method="alti").get_title().splitlines()[0]
    'ALTI rollout (contributions composed over layers): relevance of input j for output i'
    >>> plt.close("all")
    """
    r = _check_rollout(rollout, example)  # (N, M)
    clip_sink = check_bool(clip_sink, "clip_sink")
    style.check_title(title)
    n, m = r.shape
    rows = _labels(tokens, n, "tokens")
    cols = _labels(src_tokens if src_tokens is not None else tokens, m, "src_tokens")
    _check_scale(gamma, method)
    ax = style.new_axes(ax, (style.clamp(0.4 * m + 2.5, 4, 12), style.clamp(0.35 * n + 1.5, 3, 10)))
    sink = int(r.mean(0).argmax())  # the column with the largest mean share
    top, clip = _color_top(r, sink, clip_sink)
    _draw_image(ax, r, gamma, top, clip)
    _ticks(ax, rows, cols)
    what = f"{METHODS[method]}: relevance of input j for output i"
    set_title(ax, what if title is None else title, _sink_note(r, sink, cols[sink], top, clip))
    return ax


def _check_scale(gamma: object, method: object) -> None:
    """``ValueError`` unless ``gamma`` is in (0, 1] and ``method`` one of :data:`METHODS`."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
        raise ValueError(f"gamma must be a number in (0, 1], got {gamma!r}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")


def _color_top(r: np.ndarray, sink: int, clip_sink: bool) -> tuple[float, bool]:
    """The top of the colour scale of ``r (N, M)``, and whether the ``sink`` column saturates.

    With ``clip_sink`` (and a positive share elsewhere) the top is the largest
    share outside the sink column; else the largest share.
    """
    rest = np.delete(r, sink, axis=1)  # (N, M - 1)
    clip = clip_sink and rest.size > 0 and float(rest.max()) > 0
    top = float(rest.max()) if clip else max(float(r.max()), 1e-12)
    return top, clip


def _draw_image(ax: Axes, r: np.ndarray, gamma: float, top: float, clip: bool) -> None:
    """The image of ``r (N, M)`` on a power scale up to ``top``, with its colour bar."""
    image = ax.imshow(
        r, cmap=style.FIELD_CMAP, norm=PowerNorm(gamma, vmin=0.0, vmax=top),
        interpolation="nearest", aspect="auto",
    )
    image.set_gid("rollout")
    scale = "linear" if gamma == 1 else f"power scale, gamma = {gamma:g}"
    ax.figure.colorbar(
        image, ax=ax, label=f"relevance ({scale})", shrink=0.9, pad=0.02,
        extend="max" if clip else "neither",
    )


def _sink_note(r: np.ndarray, sink: int, label: str, top: float, clip: bool) -> str:
    """The title's second line: the ``sink`` column's mean share, and where colours top."""
    share = float(r[:, sink].mean())
    note = f"column “{label}” holds {share:.0%} of an output’s relevance on average"
    if clip:
        note += f";\ncolours top at {top:.2g}, the largest share outside that column"
    return note


def _check_rollout(rollout: object, example: int | None) -> np.ndarray:
    """One example's rollout ``(N, M)`` as float64, checked."""
    if not isinstance(rollout, torch.Tensor):
        raise TypeError(f"rollout must be a tensor (N, M), got {type(rollout).__name__}")
    b = check_example(example, rollout.shape[0] if rollout.dim() == 3 else None, "rollout")
    one = rollout if b is None else rollout[b]  # (N, M)
    if one.dim() != 2 or 0 in one.shape:
        raise ValueError(
            f"rollout must have shape (N, M) or (B, N, M), got {tuple(rollout.shape)}"
        )
    r = one.detach().to("cpu", torch.float64)
    if not torch.isfinite(r).all() or bool((r < 0).any()):
        raise ValueError("rollout must hold finite, non-negative values")
    return r.numpy()


def _labels(labels: Sequence[str] | None, size: int, arg: str) -> list[str]:
    """``size`` labels, cut short; their indices when ``labels`` is None."""
    if labels is None:
        return [str(k) for k in range(size)]
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise TypeError(f"{arg} must be a sequence of {size} labels, got {type(labels).__name__}")
    if len(labels) != size:
        raise ValueError(f"{arg} must be {size} labels, got {labels!r:.80}")
    return [style.short(str(t)) for t in labels]


def _ticks(ax: Axes, rows: list[str], cols: list[str]) -> None:
    """Token labels on both axes, thinned above ``style.MAX_LABELS``."""
    for labels, set_ticks in ((rows, ax.set_yticks), (cols, ax.set_xticks)):
        ticks = list(range(0, len(labels), style.label_step(len(labels))))
        set_ticks(ticks, [labels[k] for k in ticks], fontsize=style.label_fontsize(len(ticks)))
    for t in ax.get_xticklabels():
        t.set(rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlabel("input token j", fontsize=9)
    ax.set_ylabel("output token i", fontsize=9)
