"""The attention benchmark behind ``graphattn bench`` (moved here; split in the next commit)."""
