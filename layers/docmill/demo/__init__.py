"""Sample documents for ``docmill demo`` (``samples/``), shipped as package data."""
