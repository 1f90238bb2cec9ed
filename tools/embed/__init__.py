"""Text embedding with a local sentence-transformers model, and the content-addressed cache of its vectors."""
