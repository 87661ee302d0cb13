from docmill.llm.base import CallAccounting, ChatMessage, GenerationParams, LLMClient, LLMResponse, Usage
from docmill.llm.factory import make_llm
from docmill.llm.ratelimit import CallGuard, RateLimiter
from docmill.retry import RetryPolicy

__all__ = [
    "CallAccounting",
    "CallGuard",
    "ChatMessage",
    "GenerationParams",
    "LLMClient",
    "LLMResponse",
    "RateLimiter",
    "RetryPolicy",
    "Usage",
    "make_llm",
]
