"""Property test of the non-finite contract (graphattn.backends.base) on every CPU backend.

Each example is a small random self or cross graph (isolated targets included) with
random inputs: NaN, +inf or -inf entries in some rows of ``q``, ``k``, ``v``, and a
per-edge bias holding ``-inf`` (removed edges, sometimes all of a target's), NaN and
``+inf`` entries. The reference backend is checked against a dense float64 oracle of
the contract written out below (which outputs and weights are NaN, the finite values,
and the gradients of the finite outputs); every other backend against the reference:
the same NaN positions, the same finite values and gradients, no non-finite gradient.
Examples are checked 40 at a time (19 in 20) as one block-diagonal graph (their tiles then also
mix targets of different examples) and one at a time.

Flex runs the same examples (other seeds) on values only: on CPU it is forward-only and takes
neither a bias nor float64. It is compiled once per shape (~25 s on CPU; the mask is data and
does not recompile), so its examples are packed 16 to a graph and padded to one shape: one
compile per process (``test_flex_follows_the_non_finite_contract`` asserts it).

``make test`` runs 2,000 examples on every backend, flex included; a longer run sets their
number::

    GRAPHATTN_CONTRACT_EXAMPLES=60000 python -m pytest -q tests/test_numeric_contract.py -k follows
"""

import math
import os

import pytest
import torch

from graphattn import graph_attention
from graphattn.graph import TokenGraph

EXAMPLES = int(os.environ.get("GRAPHATTN_CONTRACT_EXAMPLES", "2000"))
BACKENDS = ["edge", "dense", "block", "split"]  # against "reference"
ATOL = {torch.float64: 1e-9, torch.float32: 2e-5}
PER_CALL = 40  # examples in one block-diagonal graph


CPU_BACKENDS = ["reference", *BACKENDS]
BIAS_BACKENDS = ["reference", "edge", "dense", "block"]  # split takes no bias
FULL = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool))
SHAPES = {  # dense runs SDPA's fused kernels on full and causal graphs, a mask otherwise
    "full": FULL,
    "causal": TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool).tril()),
    "general": TokenGraph([[0, 1, 3, 0, 2], [0, 0, 1, 2, 3]], 4),
}


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_target_without_edges_gets_zeros_whatever_its_query(backend, value):
    g = TokenGraph([[0, 1], [1, 1]], 3)  # targets 0 and 2 have no edge
    q, k, v = (_randn(i, 3, 2, 4) for i in range(3))
    q[0, 0, 1] = q[2, 1, 3] = value
    out = graph_attention(q, k, v, g, backend=backend)
    assert torch.equal(out[[0, 2]], torch.zeros(2, 2, 4)), backend
    assert torch.isfinite(out[1]).all(), backend


@pytest.mark.parametrize("backend", BIAS_BACKENDS)
def test_a_target_whose_edges_are_all_minus_inf_gets_zeros_whatever_its_query(backend):
    g = TokenGraph([[0, 1], [1, 1]], 2)
    q = torch.ones(2, 1, 2)
    q[1, 0, 0] = math.nan
    out = graph_attention(q, q.nan_to_num(), q.nan_to_num(), g, bias=torch.full((2,), -math.inf),
                          backend=backend)  # fmt: skip
    assert torch.equal(out, torch.zeros_like(out)), backend


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_bad_query_reaches_its_own_output(backend, shape):
    g = SHAPES[shape]
    q, k, v = (_randn(i, 4, 2, 8) for i in range(3))
    q[2, 0, 3] = math.nan
    out = graph_attention(q, k, v, g, backend=backend)
    ref = graph_attention(q, k, v, g, backend="reference")
    assert out[2, 0].isnan().all(), (backend, out[2, 0])
    assert torch.equal(out.isnan(), ref.isnan())
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num())


def test_flex_eager_lets_a_bad_query_reach_its_own_output():
    from graphattn.backends import KernelCall
    from graphattn.backends.flex import flex_attention_kernel

    q, k, v = (_randn(i, 1, 4, 2, 8) for i in range(3))
    q[0, 2, 0, 3] = math.nan
    out, _ = flex_attention_kernel(KernelCall(q, k, v, FULL, scale=0.5), compiled=False)
    expected = torch.zeros(4, 2, dtype=torch.bool)
    expected[2, 0] = True
    assert torch.equal(out[0].isnan().any(-1), expected)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_an_inf_key_reaches_its_readers_also_where_its_score_is_minus_inf(backend):
    g = TokenGraph([[0, 1], [1, 1]], 2)
    q = k = v = torch.ones(2, 1, 2)
    k = k.clone()
    k[0, 0, 0] = -math.inf  # <q_1, k_0> = -inf: the reference's arithmetic would drop the edge
    out = graph_attention(q, k, v, g, backend=backend)
    assert out[1].isnan().all() and torch.equal(out[0], torch.zeros(1, 2)), (backend, out)


@pytest.mark.parametrize("backend", BIAS_BACKENDS)
def test_a_minus_inf_edge_from_a_bad_source_reads_nothing(backend):
    g = TokenGraph([[0, 1, 1], [1, 0, 1]], 2)  # edges 1 -> 0, 0 -> 1, 1 -> 1
    q = k = torch.ones(2, 1, 2)
    v = torch.tensor([[[math.nan, 1.0]], [[2.0, 3.0]]])  # source 0's value is bad
    bias = torch.tensor([0.0, -math.inf, 0.0])  # ... but its only edge is removed
    out = graph_attention(q, k, v, g, bias=bias, backend=backend)
    assert torch.equal(out, torch.tensor([[[2.0, 3.0]], [[2.0, 3.0]]])), (backend, out)


@pytest.mark.parametrize("backend", BIAS_BACKENDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_bad_bias_keeps_the_gradients_of_other_nodes_finite(backend, value):
    g = TokenGraph.from_dense_mask(_randn(0, 6, 6) < 0.5)
    leaves = [_randn(i, 1, 6, 2, 4).requires_grad_() for i in range(3)]
    bias = _randn(3, 1, g.num_edges, 2)
    bias[0, 0, 0] = value  # the first edge, head 0
    bias.requires_grad_()
    out = graph_attention(*leaves, g, bias=bias, backend=backend)
    ref = graph_attention(*leaves, g, bias=bias, backend="reference")
    grads = torch.autograd.grad(out, (*leaves, bias), torch.ones_like(out))
    ref_grads = torch.autograd.grad(ref, (*leaves, bias), torch.ones_like(ref))
    for grad, want in zip(grads, ref_grads, strict=True):
        assert torch.isfinite(grad).all(), backend  # a NaN output passes no gradient back
        torch.testing.assert_close(grad, want)
    reads = torch.zeros(1, 6, 2, dtype=torch.bool)  # NaN or +inf: only that edge's target
    reads[0, int(g.dst[0]), 0] = value != -math.inf
    assert torch.equal(out.isnan().any(-1), reads), backend


def _member_mask(gen: torch.Generator, cross: bool) -> torch.Tensor:
    """One example's mask ``(n, m)``: random density, some targets without an edge."""
    n = int(torch.randint(1, 9, (), generator=gen))
    m = int(torch.randint(1, 9, (), generator=gen)) if cross else n
    density = [0.0, 0.3, 0.7, 1.0][int(torch.randint(4, (), generator=gen))]
    mask = torch.rand(n, m, generator=gen) < density
    mask[torch.rand(n, generator=gen) < 0.2] = False  # isolated targets
    return mask


def _poison(x: torch.Tensor, gen: torch.Generator, rate: float) -> torch.Tensor:
    """``x`` with NaN, +inf or -inf in random entries (about ``rate`` of its rows hit)."""
    hit = torch.rand(x.shape[:-1], generator=gen) < rate  # (..., rows)
    col = torch.randint(x.shape[-1], x.shape[:-1], generator=gen)  # one entry per hit row
    kind = torch.randint(3, x.shape[:-1], generator=gen)
    values = torch.tensor([math.nan, math.inf, -math.inf], dtype=x.dtype)[kind]
    entry = torch.nn.functional.one_hot(col, x.shape[-1]).bool() & hit.unsqueeze(-1)
    return torch.where(entry, values.unsqueeze(-1), x)


def _case(seed: int, members: int):
    """A block-diagonal graph of ``members`` examples and inputs ``q, k, v, bias`` (float64)."""
    gen = torch.Generator().manual_seed(seed)
    cross = bool(torch.rand((), generator=gen) < 0.3)
    mask = torch.block_diag(*(_member_mask(gen, cross) for _ in range(members)))  # (N, M)
    graph = TokenGraph.from_dense_mask(mask, cross=cross or mask.shape[0] != mask.shape[1])
    b, h = int(torch.randint(1, 3, (), generator=gen)), int(torch.randint(1, 4, (), generator=gen))
    n, m, e = graph.num_nodes, graph.num_src_nodes, graph.num_edges
    q = _poison(torch.randn(b, n, h, 4, generator=gen, dtype=torch.float64), gen, 0.05)
    k = _poison(torch.randn(b, m, h, 4, generator=gen, dtype=torch.float64), gen, 0.05)
    v = _poison(torch.randn(b, m, h, 4, generator=gen, dtype=torch.float64), gen, 0.05)
    bias = torch.randn(b, e, h, generator=gen, dtype=torch.float64)
    bias[torch.rand(b, e, h, generator=gen) < 0.2] = -math.inf
    if e:
        bias[..., graph.dst == int(graph.dst[0]), :] = -math.inf  # every edge of one target
    bias = _poison(bias.unsqueeze(-1), gen, 0.02)[..., 0]  # NaN, +inf or -inf entries
    dtype = torch.float64 if seed % 2 else torch.float32
    return graph, [t.to(dtype) for t in (q, k, v)], bias


def _oracle(graph: TokenGraph, q, k, v, bias):
    """Output ``(B, N, H, Dv)``, dense weights ``(B, H, N, M)`` and the contract's gradients.

    Written from the contract alone, on the dense ``(N, M)`` mask in float64.
    """
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    b, n, h, d = q.shape
    dense = torch.full((b, h, n, k.shape[1]), -math.inf, dtype=torch.float64)  # non-edges
    bias_leaf = None if bias is None else bias.detach().double().requires_grad_()
    dense[:, :, graph.dst, graph.src] = 0.0 if bias is None else bias_leaf.transpose(1, 2)
    live = dense != -math.inf  # (B, H, N, M) edges that are not removed
    bad_b = live & (dense.isnan() | (dense == math.inf))
    bad_q, bad_k, bad_v = (~torch.isfinite(t).all(-1).transpose(1, 2) for t in leaves)  # (B,H,L)
    scores_bad = live & (bad_q[..., :, None] | bad_k[..., None, :] | bad_b)  # (B, H, N, M)
    out_bad = (scores_bad | (live & bad_v[..., None, :])).any(-1)  # (B, H, N)
    qc, kc, vc = (
        t.transpose(1, 2).masked_fill(bad.unsqueeze(-1), 0.0)
        for t, bad in zip(leaves, (bad_q, bad_k, bad_v), strict=True)
    )  # (B, H, L, D) with the bad rows zeroed
    s = qc @ kc.transpose(-1, -2) / math.sqrt(d) + dense.masked_fill(bad_b | ~live, 0.0)
    has = live.any(-1, keepdim=True)  # (B, H, N, 1)
    p = torch.softmax(s.masked_fill(~live & has, -math.inf), -1) * has  # (B, H, N, M)
    out = (p @ vc).masked_fill(out_bad.unsqueeze(-1), math.nan).transpose(1, 2)  # (B, N, H, Dv)
    weights = p.masked_fill(scores_bad.any(-1, keepdim=True), math.nan)  # (B, H, N, M)
    cot = _cotangent(out)  # unused leaves (a graph without edges) get zeros
    wanted = leaves + ([bias_leaf] if bias_leaf is not None else [])
    return out, weights, torch.autograd.grad(out, wanted, cot, materialize_grads=True)


def _cotangent(out: torch.Tensor) -> torch.Tensor:
    return torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view(out.shape)


def _run(backend: str, graph: TokenGraph, qkv, bias):
    """Output, edge weights ``(B, E, H)`` (or None) and gradients of one backend, in float64."""
    leaves = [t.detach().clone().requires_grad_() for t in qkv]
    wanted = list(leaves)
    if bias is not None:
        bias = bias.detach().clone().requires_grad_()
        wanted.append(bias)
    weights = bias is not None  # split takes neither a bias nor returns weights
    res = graph_attention(*leaves, graph, bias=bias, backend=backend, return_weights=weights)
    out, w = res if weights else (res, None)
    grads = torch.autograd.grad(out, wanted, _cotangent(out).to(out.dtype))
    w = None if w is None else w.detach().double()
    return out.detach().double(), w, [g.double() for g in grads]


def _assert_same(name: str, got: torch.Tensor, want: torch.Tensor, atol: float) -> None:
    """Same NaN positions; the other entries finite and within ``atol`` (relative to size)."""
    assert torch.equal(got.isnan(), want.isnan()), (name, (got.isnan() != want.isnan()).nonzero())
    fin = ~want.isnan()
    assert torch.isfinite(got[fin]).all(), name
    if fin.any():
        tol = atol * max(1.0, float(want[fin].abs().max()))
        assert float((got[fin] - want[fin]).abs().max()) <= tol, name


def _check(seed: int, members: int) -> None:
    graph, qkv, bias = _case(seed, members)
    atol = ATOL[qkv[0].dtype]
    for with_bias in (True, False):
        b = bias.to(torch.float64 if qkv[0].dtype == torch.float64 else torch.float32)
        b = b if with_bias else None
        out, weights, grads = _oracle(graph, *qkv, b)
        ref = _run("reference", graph, qkv, b)
        _assert_same(f"reference out {seed}", ref[0], out.detach(), atol)
        if b is not None:
            w = weights.detach()[:, :, graph.dst, graph.src].transpose(1, 2)  # (B, E, H)
            _assert_same(f"reference weights {seed}", ref[1], w, atol)
        for i, (got, want) in enumerate(zip(ref[2], grads, strict=True)):
            _assert_same(f"reference grad {i} {seed}", got, want, 10 * atol)
        for backend in BACKENDS:
            if backend == "split" and with_bias:
                continue
            mine = _run(backend, graph, qkv, b)
            _assert_same(f"{backend} out {seed}", mine[0], ref[0], atol)
            if b is not None:
                _assert_same(f"{backend} weights {seed}", mine[1], ref[1], atol)
            for i, (got, want) in enumerate(zip(mine[2], ref[2], strict=True)):
                _assert_same(f"{backend} grad {i} {seed}", got, want, 10 * atol)


@pytest.mark.parametrize("part", range(4))
def test_every_cpu_backend_follows_the_non_finite_contract(part):
    """``EXAMPLES`` examples in all: block-diagonal batches of ``PER_CALL``, and single graphs."""
    batched = EXAMPLES * 19 // 20 // PER_CALL  # 19 in 20 examples in batches
    single = EXAMPLES - batched * PER_CALL
    for seed in range(part, batched, 4):
        _check(seed, PER_CALL)
    for seed in range(part, single, 4):
        _check(10**6 + seed, 1)


# ------------------------------------------------------------------ flex
# FlexAttention here is torch.compile'd (inductor's C++ kernel on CPU; ~25 s per compile) and
# forward only on CPU (torch raises "FlexAttention does not support backward on CPU"), takes no
# bias and no float64. A compile is keyed by the shapes of q, k, v and of the BlockMask's tables,
# not by the mask's contents: so every flex example is padded to one shape, (B, N, M, H, D) =
# (2, 128, 128, 3, 4) in float32, one 128 x 128 tile whose mask is data, and flex compiles once
# per process. The padding has one edge (the last padding target reads the last padding
# source), so the tile is never empty (an empty graph has no tile: a second compile).
FLEX_SHAPE = (2, 128, 3, 4)  # B, N = M, H, D
FLEX_MEMBERS = 16  # examples per padded graph (at most 8 tokens each)


def _pad_to_flex(graph: TokenGraph, qkv):
    """``graph`` and float32 ``q, k, v`` padded with zeros to :data:`FLEX_SHAPE`."""
    b, n, h, d = FLEX_SHAPE
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[: graph.num_nodes, : graph.num_src_nodes] = graph.to_dense_mask()
    mask[n - 1, n - 1] = graph.num_nodes < n and graph.num_src_nodes < n  # the padding edge
    padded = TokenGraph.from_dense_mask(mask, cross=graph.is_cross)
    out = []
    for t in qkv:
        x = torch.zeros(b, n, h, d)
        x[: t.shape[0], : t.shape[1], : t.shape[2]] = t.float()
        out.append(x)
    return padded, out


def _check_flex(seed: int, members: int) -> None:
    graph, qkv, _ = _case(seed, members)
    graph, qkv = _pad_to_flex(graph, qkv)
    with torch.no_grad():
        ref = graph_attention(*qkv, graph, backend="reference")
        out = graph_attention(*qkv, graph, backend="flex")
    _assert_same(f"flex out {seed}", out, ref, ATOL[torch.float32])


def test_flex_follows_the_non_finite_contract():
    """Flex against the reference on ``EXAMPLES`` examples: values (forward only on CPU).

    The examples are those of the other backends' test (other seeds), ``FLEX_MEMBERS`` to a
    padded graph (19 in 20) or one alone, all at one compiled shape.
    """
    from graphattn.backends import explain_backend

    reason = explain_backend(FULL, num_heads=3, head_dim=4).refusals.get("flex")
    if reason is not None:
        pytest.skip(f"flex cannot run here: {reason}")
    from torch._dynamo.utils import counters

    compiled = counters["stats"]["unique_graphs"]
    batched = EXAMPLES * 19 // 20 // FLEX_MEMBERS
    single = EXAMPLES - batched * FLEX_MEMBERS
    for seed in range(batched):
        _check_flex(2 * 10**6 + seed, FLEX_MEMBERS)
    for seed in range(single):
        _check_flex(3 * 10**6 + seed, 1)
    assert counters["stats"]["unique_graphs"] - compiled <= 1, "flex compiled more than once"
