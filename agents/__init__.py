"""LLM agents of SemSR: the chat-model adapter, versioned prompts, intent inference and the in-context
recommender, with a response cache and cost accounting.

Importing this package is cheap; submodules load langchain and friends only when used.
"""
