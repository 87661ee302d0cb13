"""The state machine `docmill dev` runs is the stack's: the packaged portable ASL matches synth."""

from __future__ import annotations

import json

from infra.asl_export import packaged_asl_path, portable_generation_asl, render_portable
from tests.infra.conftest import Synth


def test_given_the_synthesised_stack_when_exported_then_it_equals_the_packaged_definition(synth: Synth) -> None:
    # Given the synthesised stack; When its generation state machine is exported with placeholders
    exported = portable_generation_asl(synth.template)
    # Then docmill_devtools ships exactly that (else: python -m infra.asl_export --write)
    packaged = packaged_asl_path().read_text(encoding="utf-8")
    assert render_portable(exported) == packaged, "stale generation.asl.json: run python -m infra.asl_export --write"
    expected = {"${DatasetsBucket}", "${Function:plan}", "${Function:generate_batch}", "${Function:assemble}"}
    assert expected <= set(_placeholders(packaged))


def test_given_the_packaged_definition_when_dev_loads_it_then_every_placeholder_is_bound() -> None:
    from docmill_devtools.dev import generation_function_names, load_generation_asl

    asl = load_generation_asl(datasets_bucket="my-datasets")
    text = json.dumps(asl)
    assert "${" not in text and "my-datasets" in text
    for name in generation_function_names().values():
        assert f"arn:aws:lambda:us-east-1:123456789012:function:{name}" in text
    assert asl["StartAt"] and asl["States"]


def _placeholders(text: str) -> list[str]:
    out, start = [], text.find("${")
    while start != -1:
        end = text.index("}", start)
        out.append(text[start : end + 1])
        start = text.find("${", end)
    return out
