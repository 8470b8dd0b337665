"""Tokenizers, the next-frame diffusion transformer, its attention and its KV cache."""

from gameworld.models.dit import MODEL_SIZES, NextFrameDiT
from gameworld.models.kv_cache import KVCache
from gameworld.models.tokenizer import DEFAULT_TOKENIZER, TOKENIZER_CONFIGS, FrameTokenizer

__all__ = [
    "DEFAULT_TOKENIZER",
    "MODEL_SIZES",
    "TOKENIZER_CONFIGS",
    "FrameTokenizer",
    "KVCache",
    "NextFrameDiT",
]
