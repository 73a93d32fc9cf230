"""Chat memory: the JSONL chat store, the run recorder, context replay and history."""

from agentgw.memory.history import chat_references, compact_live_events, history_events, raw_messages
from agentgw.memory.recorder import RunRecorder
from agentgw.memory.store import ChatNotFound, ChatStore, StoredRun, can_access, chat_name, parse_chat_id
from agentgw.memory.window import build_context

__all__ = [
    "ChatNotFound",
    "ChatStore",
    "RunRecorder",
    "StoredRun",
    "build_context",
    "can_access",
    "chat_name",
    "chat_references",
    "compact_live_events",
    "history_events",
    "parse_chat_id",
    "raw_messages",
]
