"""Error of attention rollout over a pruned recording, against the exact one, versus ``k``.

One forward of a GPT-2-small-shaped model (12 layers, 768 wide, 12 heads,
random weights from ``GPT2Config``, ``attn_implementation="graphattn"``, its
own causal graph) on 4,096 random tokens runs inside two nested recordings:
the exact one (``heads="mean"``, every edge) and one pruned to the strongest
``k`` incoming edges per target (``heads="mean", top_k=k``) for the first
``k``; the other ``k`` are pruned from the exact recording with
:func:`graphattn.flow.prune_top_k`, which is what ``record(top_k=k)`` does.
For each ``k`` the rollout to 8 targets (``targets=``, top-down, no ``N x N``)
is compared with the exact rollout:

- ``lost``: the mass the pruned rollout reports as dropped (``1 - row sum``
  with ``dropped=``), which is also its L1 distance to the exact row;
- ``renormalized``: the L1 distance of the rollout that ignores the dropped
  mass (every row renormalized over its kept edges);
- ``top-10``: the share of the exact row's 10 strongest sources among the
  pruned row's 10 strongest.

Writes the table as JSON and the curve as a PNG:

    PYTHONPATH=. python benchmarks/pruned_rollout.py
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn.flow import attention_rollout, prune_top_k, top_paths  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KS = (1, 2, 4, 8, 16, 32, 64, 256)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--ks", type=int, nargs="+", default=list(KS))
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/pruned_rollout.json")
    p.add_argument("--png", type=Path, default=ROOT / "docs/img/pruned_rollout.png")
    return p.parse_args(argv)


def recordings(args: argparse.Namespace):
    """The exact and the first ``k``'s pruned recording of one forward, and its seconds."""
    cfg = transformers.GPT2Config(
        n_embd=args.width, n_layer=args.layers, n_head=args.heads, n_positions=args.tokens
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="graphattn")
    ids = torch.randint(0, cfg.vocab_size, (1, args.tokens))
    t0 = time.perf_counter()
    with torch.no_grad(), graphattn.hf.record(heads="mean") as exact:
        with graphattn.hf.record(heads="mean", top_k=args.ks[0]) as pruned:
            model.eval()(ids)
    return exact, pruned, time.perf_counter() - t0


def nbytes(layers, dropped) -> int:
    """Bytes of the kept weights, their graphs' index and the dropped mass."""
    total = sum(w.numel() * w.element_size() + 16 * g.num_edges for g, w in layers)
    return total + sum(0 if d is None else d.numel() * d.element_size() for d in dropped)


def row_errors(exact: torch.Tensor, got: torch.Tensor, renorm: torch.Tensor) -> dict:
    """Errors of the pruned rows ``(T, N)`` against the exact ones, over the targets."""
    lost = 1 - got.sum(1)  # (T,)
    top = exact.topk(10, dim=1).indices  # (T, 10)
    overlap = [
        len(set(a.tolist()) & set(b.tolist())) / 10
        for a, b in zip(top, got.topk(10, dim=1).indices, strict=True)
    ]
    return {
        "lost_mean": float(lost.mean()),
        "lost_max": float(lost.max()),
        "l1_accounted_max": float((exact - got).abs().sum(1).max()),
        "l1_renormalized_mean": float((exact - renorm).abs().sum(1).mean()),
        "top10_overlap_mean": sum(overlap) / len(overlap),
    }


def measure(args: argparse.Namespace) -> dict:
    exact, pruned, forward_s = recordings(args)
    layers = exact.layers(0)  # (graph, weights (E,)) per layer
    n = layers[0][0].num_nodes
    targets = torch.linspace(n // 8 - 1, n - 1, 8).long()  # (T,) spread over the sequence
    t0 = time.perf_counter()
    reference = attention_rollout(layers, targets=targets).double()  # (T, N)
    rows = [{"k": None, "edges": sum(g.num_edges for g, _ in layers), "seconds": 0.0}]
    rows[0].update(bytes=nbytes(layers, [None]), rollout_s=time.perf_counter() - t0)
    for k in args.ks:
        if k == args.ks[0]:
            kept, dropped = pruned.layers(0), pruned.dropped(0)
        else:
            parts = [prune_top_k(g, w, k) for g, w in layers]
            kept, dropped = [(p.graph, p.weights) for p in parts], [p.dropped for p in parts]
        t0 = time.perf_counter()
        got = attention_rollout(kept, targets=targets, dropped=dropped).double()
        seconds = time.perf_counter() - t0
        renorm = attention_rollout(kept, targets=targets).double()
        row = {"k": k, "edges": sum(g.num_edges for g, _ in kept), "rollout_s": seconds}
        row.update(bytes=nbytes(kept, dropped), **row_errors(reference, got, renorm))
        rows.append(row)
    t0 = time.perf_counter()
    paths = top_paths(pruned.layers(0), n - 1, 0, 5, dropped=pruned.dropped(0))
    paths_s = time.perf_counter() - t0
    return {
        "forward_with_two_recordings_s": forward_s,
        "top_paths": {"k": args.ks[0], "seconds": paths_s, "found": len(paths)},
        "rows": rows,
    }


def table(result: dict) -> str:
    lines = [
        "| k | edges kept | recorded MB | lost (= L1 error), mean / max | "
        "L1 error renormalized | top-10 overlap |",
        "|---|---|---|---|---|---|",
    ]
    exact = result["rows"][0]
    mb = exact["bytes"] / 1e6
    lines.append(f"| all (exact) | {exact['edges']:,} | {mb:.0f} | 0 | 0 | 1.00 |")
    for r in result["rows"][1:]:
        lines.append(
            f"| {r['k']} | {r['edges']:,} ({r['edges'] / exact['edges']:.2%}) | "
            f"{r['bytes'] / 1e6:.1f} | {r['lost_mean']:.4f} / {r['lost_max']:.4f} | "
            f"{r['l1_renormalized_mean']:.4f} | {r['top10_overlap_mean']:.2f} |"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path, tokens: int) -> None:
    rows = result["rows"][1:]
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    ax.plot(ks, [r["lost_mean"] for r in rows], "o-", label="lost mass = L1 error (dropped=)")
    ax.plot(ks, [r["l1_renormalized_mean"] for r in rows], "s--", label="L1 error, renormalized")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 2.05)
    ax.set_xlabel("k (strongest incoming edges kept per target)")
    ax.set_ylabel("L1 error of a rollout row (mean over 8 targets)")
    right = ax.twinx()
    overlap = [r["top10_overlap_mean"] for r in rows]
    right.plot(ks, overlap, "^:", color="0.4", label="top-10 sources shared (right)")
    right.set_ylim(0, 1.025)
    right.set_ylabel("share of the exact top-10 sources")
    ax.set_title(f"pruned vs exact rollout: GPT-2-small shape, random weights, {tokens:,} tokens")
    ax.grid(True, alpha=0.3)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    result = measure(args)
    result["command"] = "PYTHONPATH=. " + shlex.join(
        ["python", "benchmarks/pruned_rollout.py", *(sys.argv[1:] if argv is None else argv)]
    )
    print(table(result))
    print(f"forward inside both recordings: {result['forward_with_two_recordings_s']:.1f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.png, args.tokens)
    return result


if __name__ == "__main__":
    main()
