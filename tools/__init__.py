"""LangChain tools over the catalogue: Chroma semantic retrieval and the SR reranker."""
