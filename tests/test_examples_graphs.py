"""examples/custom_graphs.py runs and prints the analysis it promises."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_graphs.py"


def test_custom_graphs_example_runs(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert "TokenGraph('by hand', N=6, E=12, density=0.333)" in out
    assert "TokenGraph('dependency tree', N=6, E=16, density=0.444)" in out
    assert ["symmetric", "True"] in lines  # the undirected tree gives edges both ways
    # hand-derived: window 8 needs ceil(63 / 7) layers, the Sparse Transformer patterns 2
    assert ["sliding_window(w=8)", "9", "False"] in lines
    assert ["strided(stride=8)", "2", "True"] in lines
    assert ["fixed(stride=8,", "c=1)", "2", "True"] in lines
    assert ["causal", "longformer(n=64)", "31", "False"] in lines
    assert "layers=4)', N=4096, E=36828," in out  # 4 layers of window 3 = window 9
