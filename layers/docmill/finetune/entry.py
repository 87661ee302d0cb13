"""The training entry point a SageMaker job runs (``docmill_finetune_entry.py`` calls ``main``).

SageMaker hands over its channels and folders as ``SM_*`` environment variables and the
hyperparameters as ``--name value`` arguments. This reads the dataset from the ``train`` channel
and the base model from the ``base`` channel, trains with :func:`run_training` (checkpoints in
``/opt/ml/checkpoints``, which SageMaker syncs to S3, so a restarted job resumes), and publishes
to ``--out`` (the models bucket) and to ``SM_MODEL_DIR``. The local tests run it on a CPU with
the same arguments and a tiny model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from docmill.finetune.data import load_training_data
from docmill.finetune.model import resolve_base
from docmill.finetune.train import FinetuneParams, publish, run_training
from docmill.storage import open_store


def run(argv: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="docmill-finetune-entry")
    parser.add_argument("--params", default="{}", help="FinetuneParams as JSON")
    parser.add_argument("--out", required=True, help="where the adapter and metrics go (s3:// or a folder)")
    parser.add_argument("--job_id", default="job")
    args, _unknown = parser.parse_known_args(list(argv))
    params = FinetuneParams.from_dict(json.loads(args.params))
    train_dir = env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")
    base_dir = env.get("SM_CHANNEL_BASE", "/opt/ml/input/data/base")
    model_dir = env.get("SM_MODEL_DIR", "/opt/ml/model")
    checkpoints = Path(env.get("DOCMILL_CHECKPOINT_DIR", "/opt/ml/checkpoints"))

    data = load_training_data(open_store(train_dir), fmt=params.format, method=params.method)
    base = resolve_base(base_dir)
    resume = (checkpoints / "checkpoints").is_dir()
    outcome = run_training(
        data, base, params, checkpoints, resume=resume, show_progress=False, say=lambda m: print(m, flush=True)
    )
    publish(outcome.work_dir, open_store(model_dir))
    artefacts = publish(outcome.work_dir, open_store(args.out))
    print(json.dumps({"job_id": args.job_id, "metrics": outcome.metrics, "artefacts": artefacts}), flush=True)
    return outcome.metrics


def main() -> None:
    run(sys.argv[1:], dict(os.environ))
