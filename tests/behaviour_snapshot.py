"""Digests of graphattn's numbers, to show a restructuring changed no behaviour.

Run it before and after a change and compare the two files::

    python tests/behaviour_snapshot.py before.json     # on the old commit
    python tests/behaviour_snapshot.py after.json      # on the new one
    python tests/behaviour_snapshot.py --compare before.json after.json

Each entry is the SHA-256 of a tensor's bytes (or of a file), so equal digests
mean bit-identical results: kernel outputs, weights and gradients on every
backend and graph kind, ``variant_attention``, the nn models' state dicts and
outputs, rollout and contributions, Hugging Face models on graphattn (forward,
``record()``, contributions, generation) and the files ``graphattn demo`` writes.
Not collected by pytest (no ``test_`` prefix); runs in about a minute.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

import graphattn as ga
from graphattn import flow, patterns, variants
from graphattn.backends import backend_names

ENTRIES: dict[str, str] = {}


def digest(value) -> str:
    """SHA-256 of a tensor (dtype, shape and bytes), or of a nested structure of them."""
    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().contiguous().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for key in sorted(x, key=str):
                h.update(str(key).encode())
                feed(x[key])
        elif isinstance(x, (list, tuple)):
            h.update(f"[{len(x)}".encode())
            for item in x:
                feed(item)
        elif isinstance(x, ga.TokenGraph):
            feed(x.edge_index)
            h.update(f"{x.num_nodes},{x.num_src_nodes}".encode())
        else:
            h.update(repr(x).encode())

    feed(value)
    return h.hexdigest()


def entry(name: str, fn: Callable[..., object], *args) -> None:
    """Record the digest of ``fn(*args)``, or the error it raised."""
    try:
        ENTRIES[name] = digest(fn(*args))
    except Exception as exc:  # noqa: BLE001 - a refusal is behaviour too
        ENTRIES[name] = f"raised {type(exc).__name__}: {exc}"


def _inputs(n, m, h, hkv, d, b, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, n, h, d, generator=g, dtype=dtype, requires_grad=True)
    k = torch.randn(b, m, hkv, d, generator=g, dtype=dtype, requires_grad=True)
    v = torch.randn(b, m, hkv, d, generator=g, dtype=dtype, requires_grad=True)
    return q, k, v


def _kernel(backend, graph, n, m, h, hkv, dtype, bias=None, seed=0):
    q, k, v = _inputs(n, m, h, hkv, 8, 2, dtype, seed)
    try:
        out, w = ga.graph_attention(q, k, v, graph, backend=backend, bias=bias, return_weights=True)
    except ValueError:  # a backend that returns no weights: its outputs and gradients
        out, w = ga.graph_attention(q, k, v, graph, backend=backend, bias=bias), None
    out.square().sum().backward()
    return out, w, q.grad, k.grad, v.grad


def _forward(backend, graph, n, m):
    q, k, v = _inputs(n, m, 4, 4, 8, 2, torch.float32, 7)
    with torch.no_grad():
        return ga.graph_attention(q, k, v, graph, backend=backend)


def kernels() -> None:
    graphs = {
        "causal": (patterns.causal(48), 48, 48),
        "window": (patterns.sliding_window(48, 5), 48, 48),
        "random": (patterns.random(48, p=0.2, seed=3), 48, 48),
        "cross": (patterns.cross(40, 24), 40, 24),
    }
    f32 = torch.float32
    for backend in backend_names():
        for gname, (graph, n, m) in graphs.items():
            key = f"kernel/{backend}/{gname}"
            for dtype in (f32, torch.float64):
                entry(f"{key}/{str(dtype)[6:]}", _kernel, backend, graph, n, m, 4, 4, dtype)
            entry(f"{key}/no_grad", _forward, backend, graph, n, m)
            entry(f"{key}/gqa", _kernel, backend, graph, n, m, 4, 2, f32)
            bias = torch.randn(graph.num_edges, 4, generator=torch.Generator().manual_seed(5))
            entry(f"{key}/bias", _kernel, backend, graph, n, m, 4, 4, f32, bias)
        heads = [patterns.causal(32), patterns.sliding_window(32, 3)] * 2
        entry(f"kernel/{backend}/per_head", _kernel, backend, heads, 32, 32, 4, 4, f32)
    for name in ("DOT_PRODUCT", "SIGMOID", "LINEAR", "COSINE"):
        def run(name=name):
            q, k, v = _inputs(24, 24, 2, 2, 8, 1, torch.float64, 1)
            variant = getattr(variants, name)
            graph = patterns.causal(24)
            out = variants.variant_attention(q, k, v, graph, variant, return_weights=True)
            out[0].sum().backward()
            return out, q.grad
        entry(f"variant/{name}", run)


def models() -> None:
    from graphattn.nn import GraphLM, GraphSeq2Seq, GraphTransformer

    builders = {
        "transformer": lambda: GraphTransformer(32, 4, 2, dim_feedforward=64),
        "lm": lambda: GraphLM(50, 32, 2, 4, max_len=64),
        "seq2seq": lambda: GraphSeq2Seq(40, 40, 32, 4, max_len=64),
    }
    for name, build in builders.items():
        def run(build=build):
            torch.manual_seed(0)
            model = build().eval()
            return model.state_dict()
        entry(f"model/{name}/state", run)
    ids = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(2))

    def lm():
        torch.manual_seed(0)
        model = GraphLM(50, 32, 2, 4, pattern="sliding_window", pattern_params={"window": 4}).eval()
        out = model(ids, need_weights=True)
        return out.logits, [w for _, w in out.layers]
    entry("model/lm/forward", lm)

    def lm_flow():
        torch.manual_seed(0)
        model = GraphLM(50, 32, 2, 4, max_len=64).eval()
        results = {}
        for method in flow.METHODS:
            results[method] = flow.contributions(model, ids[:1], method=method)
        out = model(ids[:1], need_weights=True)
        results["rollout"] = flow.attention_rollout(out.layers)
        return results
    entry("flow/lm", lm_flow)


def hf() -> None:
    try:
        import transformers as tf

        import graphattn.hf as gh
    except ImportError:
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from hf_tiny import FAMILIES

    ids = torch.randint(0, 100, (1, 12), generator=torch.Generator().manual_seed(4))
    for family, make in FAMILIES.items():
        def run(make=make):
            cls, config = make()
            torch.manual_seed(0)
            model = cls(config).eval()
            model = gh.attach(model) if hasattr(gh, "attach") else model
            extra = {"decoder_input_ids": ids[:, :5]} if model.config.is_encoder_decoder else {}
            with torch.no_grad(), gh.record() as rec:
                out = model(ids, **extra)
            return out[0], rec.layers()
        entry(f"hf/{family}/forward+record", run)

    def gpt2_contrib():
        torch.manual_seed(0)
        config = tf.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=64)
        model = gh.attach(tf.GPT2LMHeadModel(config).eval())
        res = {m: gh.hf_contributions(model, ids, m) for m in ("alti", "globenc", "value_zeroing")}
        res["generate"] = model.generate(ids, max_new_tokens=4, do_sample=False)
        return res
    entry("hf/gpt2/contributions+generate", gpt2_contrib)


def demo() -> None:
    from graphattn.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        code = main(["demo", "--out", tmp])
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        for p in files:  # pictures too: matplotlib writes the same bytes for the same figure
            ENTRIES[f"demo/{p.relative_to(tmp)}"] = hashlib.sha256(p.read_bytes()).hexdigest()
        ENTRIES["demo/exit"] = str(code)
        ENTRIES["demo/files"] = digest([str(p.relative_to(tmp)) for p in files])


def compare(a: str, b: str) -> int:
    before, after = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for key in differ:
        print(f"DIFFERS {key}: {before.get(key)} -> {after.get(key)}")
    print(f"{len(before)} entries before, {len(after)} after, {len(differ)} differ")
    return 1 if differ else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compare"]:
        return compare(*argv[1:3])
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for part in (kernels, models, hf, demo):
        part()
    Path(argv[0]).write_text(json.dumps(ENTRIES, indent=1, sort_keys=True) + "\n")
    raised = sum(v.startswith("raised") for v in ENTRIES.values())
    print(f"{len(ENTRIES)} entries ({raised} raised) -> {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
