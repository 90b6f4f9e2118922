"""Retrieval: a versioned vector index over knowledge-base passages, and the hook that feeds
passages to the model under the one `<context>` schema (brandsafe.rendering)."""
from .index import build_index, index_id
from .knowledge import KnowledgeError, KnowledgePassage, read_knowledge, write_knowledge
from .retriever import Retriever

__all__ = ["KnowledgeError", "KnowledgePassage", "Retriever", "build_index", "index_id", "read_knowledge",
           "write_knowledge"]
