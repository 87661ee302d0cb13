"""open_vector_store picks the back end the settings name."""

from __future__ import annotations

import pytest

from docmill.config import OpenSearchSettings, Settings
from docmill.errors import ConfigurationError
from docmill.vectorstores.factory import open_vector_store
from docmill.vectorstores.lancedb_store import LanceDBStore
from docmill.vectorstores.opensearch import OpenSearchStore


def test_factory_picks_the_configured_store(tmp_path):
    assert open_vector_store(Settings(home=tmp_path, store="none")) is None
    local = open_vector_store(Settings(home=tmp_path, store="local"))
    assert isinstance(local, LanceDBStore) and local.path == tmp_path / "vectors"
    remote = open_vector_store(Settings(store="opensearch", opensearch=OpenSearchSettings(url="http://localhost:9200")))
    assert isinstance(remote, OpenSearchStore) and remote.index == "docmill-chunks"
    with pytest.raises(ConfigurationError):
        open_vector_store(Settings(store="opensearch"))
