"""graphattn.hf keeps no hidden state: one context variable per thread or task, a cross call's
decoder offset from its own call, and an undoable, version-checked change to transformers."""

import asyncio
import threading

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

import transformers  # noqa: E402
from hf_tiny import inputs, tiny  # noqa: E402
from transformers import DynamicCache, EncoderDecoderCache  # noqa: E402
from transformers.utils.generic import TransformersKwargs  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import patterns  # noqa: E402
from graphattn.hf import registry, state  # noqa: E402
from graphattn.hf.edits import current_edit, edit_attention  # noqa: E402
from graphattn.hf.record import active_recordings  # noqa: E402
from graphattn.hf.tracking import Tracker, current  # noqa: E402

EMPTY = state.HfState()


def test_blocks_nest_and_each_exit_restores_the_state_before_it():
    with graphattn.hf.record() as outer, edit_attention(explicit=True):
        with graphattn.hf.record() as inner, Tracker() as tracker:
            assert active_recordings() == [outer, inner]
            assert current() is tracker and current_edit().explicit
            with edit_attention(lrp=True):
                assert current_edit().lrp and not current_edit().explicit
            assert current_edit().explicit
            inner.add(cross=False, decoder=True, layer=0, module="A",
                      graph=patterns.causal(2), weights=torch.ones(1, 3, 1))  # fmt: skip
        assert active_recordings() == [outer] and current() is None
        outer.add(cross=False, decoder=True, layer=0, module="A",
                  graph=patterns.causal(2), weights=torch.ones(1, 3, 1))  # fmt: skip
    assert state.current() == EMPTY


def test_an_exception_inside_a_block_restores_the_outer_state():
    with graphattn.hf.record() as outer:
        before = state.current()
        with pytest.raises(RuntimeError, match="inside"):
            with edit_attention(zero=lambda *a: None), graphattn.hf.record(), Tracker():
                assert len(active_recordings()) == 2 and current() is not None
                raise RuntimeError("inside")
        assert state.current() == before and active_recordings() == [outer]
        outer.add(cross=False, decoder=True, layer=0, module="A",
                  graph=patterns.causal(2), weights=torch.ones(1, 3, 1))  # fmt: skip
    assert state.current() == EMPTY


def test_two_threads_recording_at_once_see_only_their_own_calls():
    model = tiny("gpt2")
    barrier = threading.Barrier(2, timeout=30)
    got, errors = {}, []

    def run(batch_size: int) -> None:
        try:
            batch = {k: v[:batch_size] for k, v in inputs("gpt2", pad=0).items()}
            with torch.no_grad(), graphattn.hf.record() as rec:
                barrier.wait()  # both blocks are open before either forward runs
                model(**batch)
                barrier.wait()  # both forwards ran before either block closes
            got[batch_size] = rec
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(b,)) for b in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    for b, rec in got.items():
        assert [c.weights.shape[0] for c in rec.calls] == [b, b]  # two layers, its own batch
    assert state.current() == EMPTY


def test_asyncio_tasks_keep_their_own_edits():
    async def task(explicit: bool, seen: list) -> None:
        with edit_attention(explicit=explicit):
            await asyncio.sleep(0)  # the other task runs here, its own edit in force
            seen.append(current_edit().explicit)

    async def both() -> tuple[list, list]:
        a, b = [], []
        await asyncio.gather(task(True, a), task(False, b))
        return a, b

    assert asyncio.run(both()) == ([True], [False])
    assert current_edit() is None


def cross_step(model, past: int, **extra):
    """Decoder layer 0's cross-attention called on its own, for decoder token ``past``
    (``past`` tokens already in the self-attention cache), no self-attention call before it."""
    attn = model.model.decoder.layers[0].encoder_attn
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    keys = torch.zeros(2, 4, past + 1, 8)  # (B, H, past + the step's token, D)
    cache.self_attention_cache.update(keys, keys, 0)
    hidden, encoded = torch.randn(2, 1, 32), torch.randn(2, 7, 32)  # (B, N, C), (B, M, C)
    with torch.no_grad(), graphattn.hf.record() as rec:
        attn(hidden, key_value_states=encoded, cache=cache, **extra)
    return rec.cross_attention


@pytest.mark.parametrize("past", [0, 3])
def test_a_cross_call_reads_its_decoder_offset_from_its_own_cache(past):
    model = graphattn.hf.attach(tiny("bart"))  # its cross-attention modules get the hooks
    cross = lambda n, m: patterns.cross_window(n, m, 1)  # noqa: E731
    ((graph, weights),) = cross_step(model, past, cross_graph=cross)
    want = patterns.cross_window(past + 1, 7, 1).subgraph([past])  # decoder token past's row
    assert graph.edge_index.tolist() == want.edge_index.tolist()
    assert weights.shape == (2, want.num_edges, 4)


def test_the_graph_keywords_are_accepted_on_the_checked_transformers_only(monkeypatch):
    assert registry.is_checked_version(transformers.__version__)  # the installed one is checked
    assert set(registry.MODEL_KWARGS) <= TransformersKwargs.__optional_keys__
    monkeypatch.setattr(transformers, "__version__", "5.26.0")
    registry.withdraw_graph_keywords()
    try:
        with pytest.raises(RuntimeError, match=r"checked against \(>= 5.24, < 5.26\), not on "
                           r"the installed transformers 5.26.0"):  # fmt: skip
            registry.accept_graph_keywords()
        with pytest.warns(UserWarning, match="generate\\(token_graph=...\\) may be refused"):
            registry.register()
        assert not set(registry.MODEL_KWARGS) & TransformersKwargs.__optional_keys__
    finally:
        monkeypatch.undo()
        registry.accept_graph_keywords()
    assert set(registry.MODEL_KWARGS) <= TransformersKwargs.__optional_keys__


def test_withdrawing_the_keywords_restores_transformers_own_keys():
    own = frozenset(TransformersKwargs.__annotations__)
    registry.withdraw_graph_keywords()
    try:
        assert TransformersKwargs.__optional_keys__ == own
        model, batch = tiny("gpt2"), inputs("gpt2", pad=0)
        with pytest.raises(ValueError, match=r"model_kwargs.*not used.*token_graph"):
            model.generate(**batch, max_new_tokens=1, token_graph=patterns.causal(8))
    finally:
        registry.accept_graph_keywords()
    assert TransformersKwargs.__optional_keys__ == own | set(registry.MODEL_KWARGS)


def test_the_dev_install_pins_a_checked_transformers_version():
    """constraints.txt keeps CI on a transformers version the integration was checked on."""
    from pathlib import Path

    pins = Path(__file__).resolve().parents[1].joinpath("constraints.txt").read_text()
    pinned = [line.split("==")[1] for line in pins.splitlines() if line.startswith("transformers=")]
    assert len(pinned) == 1 and registry.is_checked_version(pinned[0])
    assert registry.is_checked_version(transformers.__version__)
