"""Text data: sources, the built-in story generator, tokenizers, packing."""
