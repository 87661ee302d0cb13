"""Parsing and validating sync configs; credential resolution from the environment."""

from __future__ import annotations

import pytest

from docmill.connectors.config import CredentialsConfig, parse_sync_config, resolve_credentials
from docmill.errors import ConfigurationError


def test_smallest_config_puts_inline_keys_into_typed_options():
    cfg = parse_sync_config("source: {type: local, path: ./docs}\ndestination: {path: s3://raw/t}")
    (source,) = cfg.sources
    assert (source.type, source.name, source.options["path"]) == ("local", "local", "./docs")
    assert source.options["include"] == [] and cfg.destination_for(source) == "s3://raw/t"


def test_aliases_are_canonical_and_names_must_be_unique():
    cfg = parse_sync_config("sources:\n"
                            "  - {type: opensearch, name: a, url: 'http://h:9200', index: i, destination: {path: /d/a}}\n"
                            "  - {type: google_drive, name: b, folder_id: F, destination: {path: /d/b}}\n")
    assert [s.type for s in cfg.sources] == ["elasticsearch", "gdrive"]
    with pytest.raises(ConfigurationError, match="source names must be unique"):
        parse_sync_config("destination: {path: /d}\nsources: [{type: local, path: a}, {type: local, path: b}]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: {type: local}\ndestination: {path: /d}", "path"),
        ("source: {type: local, path: /x, colour: red}\ndestination: {path: /d}", "colour"),
        ("source: {type: github, repo: not-a-repo}\ndestination: {path: /d}", "owner/name"),
        ("source: {type: local, path: /x}", "has no destination"),
        ("source: {type: local, path: /x, name: 'bad name'}\ndestination: {path: /d}", "source name"),
        ("- just a list", "expected a mapping"),
        ("destination: {path: s3://raw/t}\nsources: [{type: local, path: a, name: a}, {type: local, path: b, name: b}]",
         "would land in the same destination s3://raw/t"),
        ("source: {type: local, path: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_configs_name_the_problem(text, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_sync_config(text)


def test_env_credentials_resolve_and_missing_ones_are_named():
    spec = CredentialsConfig(env={"token": "GH_TOKEN", "user": "GH_USER"})
    assert resolve_credentials(spec, environ={"GH_TOKEN": "t", "GH_USER": "u"}) == {"token": "t", "user": "u"}
    with pytest.raises(ConfigurationError, match="GH_USER"):
        resolve_credentials(spec, environ={"GH_TOKEN": "t"})


def test_a_plain_string_secret_becomes_the_named_field():
    class Secrets:
        def get_secret_value(self, SecretId):  # noqa: N803 - boto3's spelling
            assert SecretId == "arn:aws:secretsmanager:eu-west-1:1:secret:slack"
            return {"SecretString": "xoxb-123"}

    spec = CredentialsConfig(secret_id="arn:aws:secretsmanager:eu-west-1:1:secret:slack", secret_field="token")
    assert resolve_credentials(spec, environ={}, secrets_client=Secrets()) == {"token": "xoxb-123"}
