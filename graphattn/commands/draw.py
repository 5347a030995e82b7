"""``graphattn draw``: draw a named pattern or a saved graph to PNG, SVG, PDF or an HTML viewer.

Examples::

    graphattn draw sliding_window --n 16 --window 3 -o window.png
    graphattn draw bigbird --n 256 --param num_random=2 -o bigbird.pdf
    graphattn draw causal --tokens "The cat sat on the mat" --view arc -o causal.svg
    graphattn draw --graph saved.json -o graph.html
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from graphattn.commands.options import count, words

FORMATS = (".png", ".svg", ".pdf", ".html")
VIEWS = ("auto", "arc", "bipartite", "circle", "spring", "layered", "matrix", "reach")
AUTO_GRAPH_LIMIT = 48  # "auto" draws graphs up to this many tokens, larger ones as a matrix
MAX_TOKENS = 2**14  # --n: larger patterns are binned to a few hundred cells a side anyway


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``draw`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "draw",
        help="draw a pattern or a saved graph (PNG, SVG, PDF or an offline HTML viewer)",
        description=(
            "Draw a named attention pattern (graphattn.patterns) or a graph saved with "
            "TokenGraph.save. The format follows the extension of -o: .png, .svg, .pdf "
            "(matplotlib) or .html (the offline interactive viewer)."
        ),
    )
    p.add_argument("pattern", nargs="?", help="pattern name, e.g. causal, sliding_window, bigbird")
    p.add_argument("--graph", type=Path, help="draw this saved graph (.json or .npz) instead")
    p.add_argument(
        "--n", type=count(1),
        help=f"number of tokens, at most {MAX_TOKENS:,} (default 16, or the number of --tokens)",
    )  # fmt: skip
    p.add_argument("--window", type=int, help="the pattern's window parameter")
    p.add_argument("--stride", type=int, help="the pattern's stride parameter")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="any other pattern parameter (repeatable); VALUE is an int, float, true/false "
        "or a comma-separated list of ints",
    )
    p.add_argument("--tokens", type=words, help="token labels, separated by spaces")
    p.add_argument(
        "--view", choices=VIEWS, default="auto",
        help=f"drawing (default auto: the graph up to {AUTO_GRAPH_LIMIT} tokens, else its "
        "mask); reach: receptive field over --layers layers",
    )
    p.add_argument(
        "--layers", type=count(1), default=3, help="layers for --view reach/layered"
    )
    p.add_argument("--dpi", type=float, default=150, help="resolution of PNG output")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file")
    return p


def parse_value(text: str) -> Any:
    """A ``--param`` value: bool, int, float, list of ints, else the string itself.

    Examples
    --------
    >>> [parse_value(v) for v in ["3", "0.5", "true", "1,4", "x"]]
    [3, 0.5, True, [1, 4], 'x']
    """
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if "," in text:
        try:
            return [int(part) for part in text.split(",")]
        except ValueError:
            pass
    return text


def pattern_params(args: argparse.Namespace) -> dict[str, Any]:
    """The pattern parameters given by ``--window``, ``--stride`` and ``--param``."""
    params: dict[str, Any] = {}
    for name in ("window", "stride"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param must look like KEY=VALUE, got {item!r}")
        params[key.strip()] = parse_value(value)
    return params


def build_graph(args: argparse.Namespace):
    """The graph to draw, from ``--graph`` or the pattern arguments."""
    from graphattn import patterns
    from graphattn.graph import TokenGraph

    if (args.pattern is None) == (args.graph is None):
        raise ValueError("give either a PATTERN name or --graph FILE (exactly one)")
    tokens = args.tokens
    if args.graph is not None:
        if args.n is not None or args.window is not None or args.stride is not None or args.param:
            raise ValueError("--n, --window, --stride and --param are for patterns, not --graph")
        graph = TokenGraph.load(args.graph)
        return graph.with_tokens(tokens) if tokens else graph
    n = args.n if args.n is not None else len(tokens) if tokens else 16
    if tokens and len(tokens) != n:
        raise ValueError(f"--n is {n} but --tokens has {len(tokens)} tokens")
    if n > MAX_TOKENS:
        raise ValueError(f"--n must be at most {MAX_TOKENS:,} tokens for a drawing, got {n:,}")
    graph = patterns.get(args.pattern, n, **pattern_params(args))
    return graph.with_tokens(tokens) if tokens else graph


def run(args: argparse.Namespace) -> int:
    """Draw and save; returns the exit status."""
    out = args.output
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"-o must end in one of {', '.join(FORMATS)}, got {out.name!r}")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of -o does not exist: {str(out.parent)!r}")
    from graphattn.plot.style import check_dpi

    check_dpi(args.dpi, "--dpi")
    graph = build_graph(args)
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    from graphattn import plot

    if out.suffix.lower() == ".html":
        layers = [(graph, None)] * (args.layers if args.view == "layered" else 1)
        plot.to_html(layers, out, title=f"graphattn: {graph!r}")
    else:
        ax = draw(graph, args.view, args.layers)
        plot.save_figure(ax.figure, out, dpi=args.dpi)
        plt.close(ax.figure)
    print(f"wrote {out} ({graph!r})")
    return 0


def draw(graph: Any, view: str, layers: int):
    """Draw ``graph`` with ``view``; returns the Axes."""
    from graphattn import plot

    if view == "auto":
        small = max(graph.num_nodes, graph.num_src_nodes) <= AUTO_GRAPH_LIMIT
        view = ("bipartite" if graph.is_cross else "arc") if small else "matrix"
    if view == "matrix":
        return plot.draw_pattern(graph)
    if view == "reach":
        return plot.draw_reach(graph, layers)
    if view == "layered":
        return plot.draw_graph([graph] * layers, "layered")
    return plot.draw_graph(graph, view)
