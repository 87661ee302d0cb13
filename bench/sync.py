"""Benchmark `docmill sync` (local folder -> local folder and -> S3 via moto) against a plain copy.

Prints seconds for: a plain copy loop (baseline, same files), the first sync (everything
lands, with metadata and state), a re-sync with nothing changed, and a re-sync after 1% of the
files changed; and the ratios against the baseline measured in the same run.

    PYTHONPATH=layers python bench/sync.py [--files 2000] [--kb 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _make_tree(root: Path, files: int, kb: int) -> list[Path]:
    paths = []
    block = os.urandom(kb * 1024)
    for i in range(files):
        path = root / f"d{i % 20:02d}" / f"doc{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(block[: kb * 1024 - 16] + f"{i:016d}".encode())
        paths.append(path)
    return paths


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    from docmill.connectors.config import parse_sync_config
    from docmill.connectors.sync import run_sync

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "src"
        paths = _make_tree(src, args.files, args.kb)

        def plain_copy() -> None:
            for p in paths:
                target = tmp_path / "copy" / p.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, target)

        baseline = _timed(plain_copy)
        print(f"files={args.files} size={args.kb}KiB workers={args.workers}")
        print(f"baseline plain copy:              {baseline:7.3f}s")

        for label, dest in (("local", str(tmp_path / "dest")), ("s3 (moto)", "s3://bench-raw/t")):
            ctx = None
            if dest.startswith("s3://"):
                import boto3
                from moto import mock_aws

                from docmill import aws

                os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
                os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
                os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
                ctx = mock_aws()
                ctx.start()
                aws.reset_clients()
                boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="bench-raw")
            cfg = parse_sync_config(f"workers: {args.workers}\nsource: {{type: local, path: '{src}'}}\n"
                                    f"destination: {{path: '{dest}'}}\n")
            results = {}
            results["first"] = _timed(functools.partial(run_sync, cfg, environ={}))
            results["noop"] = _timed(functools.partial(run_sync, cfg, environ={}))
            for p in paths[:: 100]:
                p.write_bytes(p.read_bytes() + b"\nedited")
            results["1pct"] = _timed(functools.partial(run_sync, cfg, environ={}))
            for name, secs in results.items():
                print(f"{label:10s} {name:6s} sync:            {secs:7.3f}s  ratio vs baseline {secs / baseline:6.2f}")
            if ctx is not None:
                ctx.stop()


if __name__ == "__main__":
    main()
