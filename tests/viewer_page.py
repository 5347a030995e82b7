"""The data of a viewer page, decoded as its script decodes it (a plain helper beside the tests)."""

import json
import re

import numpy as np

from graphattn.plot.viewer_data import decode


def page_data(path_or_text) -> tuple[str, dict]:
    """The page's text and its JSON, each layer with ``tokens``, ``src``, ``dst``, ``w``, ``share``.

    ``w`` holds one list per head in the page, ``share`` the kept share of
    each target's weight (None when every edge is kept).
    """
    text = path_or_text if isinstance(path_or_text, str) else path_or_text.read_text()
    block = r'<script type="application/json" class="graphattn-{}">(.*?)</script>'
    data = json.loads(re.search(block.format("data"), text).group(1))
    blocks = re.findall(block.format("layer"), text)
    assert len(blocks) == len(data["layers"])
    for layer, block in zip(data["layers"], blocks, strict=True):
        arrays = json.loads(block)
        count = decode(arrays["count"]).astype(np.int64)
        src = decode(arrays["src"]).astype(np.int64)
        weights = np.ones((1, len(src)))
        if arrays["w"] is not None:
            weights = decode(arrays["w"]).reshape(layer["heads"], len(src)) * layer["step"]
        share = None if arrays["mass"] is None else decode(arrays["mass"]) / 65535
        layer.update(
            tokens=data["labels"][layer["tokens"]],
            srcTokens=data["labels"][layer["srcTokens"]],
            src=src.tolist(),
            dst=np.repeat(np.arange(layer["n"]), count).tolist(),
            w=weights.tolist(),
            share=share,
        )
    return text, data
