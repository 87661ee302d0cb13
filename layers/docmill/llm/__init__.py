from docmill.llm.base import ChatMessage, GenerationParams, LLMClient, LLMResponse, Usage

__all__ = ["ChatMessage", "GenerationParams", "LLMClient", "LLMResponse", "Usage"]
