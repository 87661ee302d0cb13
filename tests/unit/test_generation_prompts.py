"""Versioned prompt templates: built-ins, few-shot examples, overrides per run and collection."""

from __future__ import annotations

import pytest

from docmill.errors import ConfigurationError
from docmill.generation.parsing import parse_judge, parse_questions
from docmill.generation.prompts import PROMPT_KINDS, collection_prompts_dir, load_prompts
from docmill.llm.base import GenerationParams


def test_builtin_prompts_have_id_version_and_render_few_shot_turns():
    prompts = load_prompts()
    for kind in PROMPT_KINDS:
        template = prompts.get(kind)
        assert template.id and str(template.version)
        assert template.origin == f"builtin:{kind}.yaml"
    messages = prompts.question.render(chunk="Pumps run daily.", n=2, types=["factual", "summary"], title="T", pages=[4])
    roles = [m.role for m in messages]
    # system, then a user/assistant pair per few-shot example, then the real request
    assert roles == ["system"] + ["user", "assistant"] * len(prompts.question.few_shot) + ["user"]
    assert "Pumps run daily." in messages[-1].content
    assert "factual, summary" in messages[-1].content
    assert "page 4" in messages[-1].content


def test_few_shot_responses_satisfy_their_own_parsers():
    # The examples teach the output format, so they must be valid for the strict parsers.
    prompts = load_prompts()
    for example in prompts.question.few_shot:
        assert parse_questions(example.response).invalid_items == 0
    for example in prompts.judge.few_shot:
        parse_judge(example.response)


def test_rejected_prompt_switches_between_no_context_and_distractor():
    prompts = load_prompts()
    no_ctx = prompts.rejected.render(question="Q?", distractor="")
    with_distractor = prompts.rejected.render(question="Q?", distractor="Unrelated passage.")
    assert "Passage" not in no_ctx[-1].content
    assert "Unrelated passage." in with_distractor[-1].content


def test_prompt_params_sit_between_defaults_and_overrides():
    judge = load_prompts().judge
    params = judge.generation_params(GenerationParams(temperature=0.7, max_tokens=50, seed=3), max_tokens=99)
    assert params.temperature == judge.params.temperature  # from the file
    assert params.max_tokens == 99  # explicit override
    assert params.seed == 3  # base default kept


def _write_prompt(folder, kind, pid, version, user="Q: {{ question }}"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{kind}.yaml").write_text(f"id: {pid}\nversion: {version}\nuser: |\n  {user}\n", encoding="utf-8")


def test_run_override_beats_collection_override_beats_builtin(tmp_path):
    run_dir = tmp_path / "run-prompts"
    coll_dir = collection_prompts_dir(tmp_path / "home", "handbook")
    _write_prompt(run_dir, "judge", "my-judge", 7, user="{{ question }} / {{ answer }}")
    _write_prompt(coll_dir, "judge", "coll-judge", 2)
    _write_prompt(coll_dir, "answer", "coll-answer", 3)
    prompts = load_prompts([run_dir, coll_dir])
    assert prompts.judge.ref == {"id": "my-judge", "version": "7"}
    assert prompts.answer.ref == {"id": "coll-answer", "version": "3"}
    assert prompts.question.ref["id"] == "question-generation"
    assert prompts.judge.render(question="q", answer="a")[-1].content == "q / a"


def test_broken_prompt_files_fail_at_load_time(tmp_path):
    _write_prompt(tmp_path, "answer", "bad", 1, user="{% for x in %}")
    with pytest.raises(ConfigurationError, match="template syntax"):
        load_prompts([tmp_path])
    (tmp_path / "answer.yaml").write_text("just a string", encoding="utf-8")
    with pytest.raises(ConfigurationError):
        load_prompts([tmp_path])


def test_missing_template_variable_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="undefined"):
        load_prompts().answer.render(question="only the question")
