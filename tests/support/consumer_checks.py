"""Consumers' own code on a docmill dataset, run in a fresh interpreter by the consumer tests.

``python -m tests.support.consumer_checks dpo <folder>``: TRL's DPOTrainer prepares the
``preference`` train split (its "conversational or not" decision depends on the hash seed, so the
test runs this under several ``PYTHONHASHSEED`` values).

``python -m tests.support.consumer_checks llamafactory <folder> <dataset>``: LLaMA-Factory's own
``get_dataset`` reads every entry of ``dataset_info.json`` of the dataset for its stage.
Prints one JSON line with what was checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dpo(folder: str) -> dict:
    import copy

    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    from tests.support.tiny_lm import tiny_llama, tiny_tokenizer

    ds = load_dataset(folder, "preference", split="train")
    tok = tiny_tokenizer(m["content"] for r in ds for k in ("prompt", "chosen", "rejected") for m in r[k])
    model = tiny_llama(tok)
    args = DPOConfig(
        output_dir=str(Path(folder) / ".dpo"), max_steps=1, per_device_train_batch_size=2, report_to=[],
        use_cpu=True, save_strategy="no", max_length=256,
    )
    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=ds, processing_class=tok)
    row = trainer.train_dataset[0]
    return {
        "rows": trainer.train_dataset.num_rows,
        "prompt": tok.decode(row["prompt_ids"]),
        "chosen": tok.decode(row["chosen_ids"]),
    }


def llamafactory(folder: str, dataset: str) -> dict:
    import importlib.machinery
    import importlib.util
    import os
    import types

    os.environ["DISABLE_VERSION_CHECK"] = "1"  # its transformers pin is older than ours
    if importlib.util.find_spec("torchaudio") is None:
        # LLaMA-Factory imports torchaudio at module level but uses it only for audio inputs;
        # no torchaudio build matches our CPU torch, so text datasets get an empty stand-in.
        stub = types.ModuleType("torchaudio")
        stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stub
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import Seq2SeqTrainingArguments

    from tests.support.tiny_lm import tiny_tokenizer

    info = json.loads((Path(folder) / "dataset_info.json").read_text(encoding="utf-8"))
    texts = [line for p in Path(folder).glob(f"{dataset}-*/train.jsonl") for line in p.read_text().splitlines()]
    tok = tiny_tokenizer(texts)
    stages = {"sft": "sft", "completion": "sft", "text": "pt", "dpo": "rm"}
    loaded: dict[str, int] = {}
    first: dict[str, str] = {}
    for name in info:
        fmt = name.removeprefix(f"{dataset}-").split("-")[0]
        data_args = DataArguments(dataset=name, dataset_dir=folder, template="default", cutoff_len=256)
        template = get_template_and_fix_tokenizer(tok, data_args)
        module = get_dataset(
            template,
            ModelArguments(model_name_or_path="unused"),
            data_args,
            Seq2SeqTrainingArguments(output_dir=str(Path(folder) / ".lf"), report_to=[]),
            stage=stages[fmt],
            tokenizer=tok,
        )
        train = module["train_dataset"]
        key = "chosen_input_ids" if stages[fmt] == "rm" else "input_ids"
        assert all(len(ids) > 0 for ids in train[key]), name
        loaded[name] = train.num_rows
        first[name] = tok.decode(train[key][0])
    return {"loaded": loaded, "first": first}


if __name__ == "__main__":
    what, *rest = sys.argv[1:]
    print(json.dumps({"dpo": dpo, "llamafactory": llamafactory}[what](*rest)))
