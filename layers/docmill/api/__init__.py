"""The chat product's API: RAG chat with citations, documents, datasets, notices, per tenant.

``docmill.api.app.create_app(services)`` is the one ASGI application; ``docmill.api.wiring``
builds its services locally (``docmill serve``) or on AWS (the API Lambda, through Mangum).
"""
