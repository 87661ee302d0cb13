from docmill.embeddings.base import Embedder

__all__ = ["Embedder", "get_embedder"]


def get_embedder(name: str = "minilm", **kwargs):  # noqa: ANN201
    """Resolve an embedder by name; heavy imports happen only for the one asked for."""
    if name in ("minilm", "local", "all-MiniLM-L6-v2"):
        from docmill.embeddings.local import LocalEmbedder

        return LocalEmbedder.shared(**kwargs)
    if name.startswith("sagemaker:"):
        from docmill.embeddings.sagemaker import SageMakerEmbedder

        return SageMakerEmbedder(endpoint_name=name.split(":", 1)[1], **kwargs)
    from docmill.errors import ConfigurationError

    raise ConfigurationError(f"unknown embedder {name!r}: use 'minilm' or 'sagemaker:ENDPOINT'")
