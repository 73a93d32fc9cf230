"""agentgw: a self-hosted, definition-driven LLM agent gateway (see README.md and SPEC)."""

__version__ = "0.1.0"
