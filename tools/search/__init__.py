"""The Chroma vector store and what a run writes to it, for semantic search over users, segments and items."""
