"""Continuous batching for the embedded model: many concurrent ``chat`` calls, one forward pass
per decoding step for all of them.

A small model on a CPU spends a decoding step reading its weights and running Python, not
multiplying: a step for 16 rows costs little more than a step for one. So one background
thread per loaded model owns it and runs the loop:

1. admit waiting requests (up to ``max_batch`` rows): prefill each prompt on its own, then join
   its key/value cache to the running batch (left-padded to a common length);
2. one forward pass for every active row, each row picks its next token
   (``docmill.llm.decoding.Sequence``: constraint, repetition control, sampling, stops);
3. finished rows leave the batch at once (their cache rows are dropped) and their callers are
   woken; new requests join at the next step, not when the whole batch is done.

The model is reached through ``StepModel`` (prefill / step / join / keep), so the scheduler is
tested with a fake model and the real one is ``CausalLMStepModel`` (transformers, KV cache).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import torch

from docmill.llm.decoding import Sequence

log = logging.getLogger(__name__)

State = TypeVar("State")

class StepModel(Protocol[State]):
    """A causal LM decoded step by step over a batch whose rows come and go."""

    def prefill(self, prompt_ids: list[int]) -> tuple[torch.Tensor, State]:
        """Run one prompt; return the logits for its next token (1-D) and its one-row state."""

    def step(self, state: State, tokens: list[int]) -> tuple[torch.Tensor, State]:
        """Feed one token per row; return next-token logits (rows x vocabulary) and the state."""

    def join(self, state: State | None, other: State) -> State:
        """The batch state with ``other``'s rows appended after ``state``'s."""

    def keep(self, state: State, rows: list[int]) -> State | None:
        """The batch state with only ``rows`` (in that order); None when empty."""

@dataclass
class _Row:
    sequence: Sequence
    future: Future[Sequence]
    pending_token: int | None = None  # chosen, not yet fed to the model
    error: Exception | None = None  # this row's own failure (e.g. its constraint); the others go on

    def choose(self, logits: torch.Tensor) -> None:
        try:
            self.pending_token = self.sequence.choose(logits)
        except Exception as error:  # noqa: BLE001 - one request's failure must not end its neighbours' replies
            self.error = error

class ContinuousBatcher(Generic[State]):
    """Runs ``Sequence`` requests through a ``StepModel`` on one background thread."""

    def __init__(self, model: StepModel[State], *, max_batch: int = 16, name: str = "docmill-llm-batcher",
                 lock: threading.Lock | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.model = model
        self.max_batch = max_batch
        self.name = name
        # Held for every forward pass, so another user of the same model (the single-stream
        # path) never runs at the same time.
        self.lock = lock or threading.Lock()
        self._waiting: deque[_Row] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.steps = 0  # forward passes in the decoding loop (not prefills)
        self.max_rows_seen = 0

    # -- callers ----------------------------------------------------------------------------
    def submit(self, sequence: Sequence) -> Future[Sequence]:
        return self.submit_many([sequence])[0]

    def submit_many(self, sequences: list[Sequence]) -> list[Future[Sequence]]:
        """Queue several requests in one go, so the loop admits them at the same step (one by
        one, the loop could start on the first before the others are queued)."""
        futures: list[Future[Sequence]] = []
        rows: list[_Row] = []
        for sequence in sequences:
            future: Future[Sequence] = Future()
            futures.append(future)
            if sequence.finished:  # e.g. max_new_tokens == 0
                future.set_result(sequence)
            else:
                rows.append(_Row(sequence, future))
        if not rows:
            return futures
        with self._wake:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._waiting.extend(rows)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._wake.notify()
        return futures

    def generate(self, sequence: Sequence) -> Sequence:
        """Submit and wait (the calling thread blocks; others keep joining the batch)."""
        return self.submit(sequence).result()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        rows: list[_Row] = []
        state: State | None = None
        while True:
            with self._wake:
                while not rows and not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed and not rows and not self._waiting:
                    return
                admitted: list[_Row] = []
                while self._waiting and len(rows) + len(admitted) < self.max_batch:
                    admitted.append(self._waiting.popleft())
            try:
                rows, state = self._admit(rows, state, admitted)
                rows, state = self._finish(rows, state)
                if rows:
                    rows, state = self._step(rows, state)
                    rows, state = self._finish(rows, state)
            except Exception as error:  # every waiting caller must hear of it
                log.exception("local generation failed")
                for row in rows + admitted:
                    if not row.future.done():
                        row.future.set_exception(error)
                rows, state = [], None

    def _admit(self, rows: list[_Row], state: State | None, admitted: list[_Row]) -> tuple[list[_Row], State | None]:
        for row in admitted:
            if not row.future.set_running_or_notify_cancel():
                continue
            with self.lock, torch.inference_mode():
                logits, row_state = self.model.prefill(row.sequence.prompt_ids)
            row.choose(logits)
            state = self.model.join(state, row_state)
            rows.append(row)
        self.max_rows_seen = max(self.max_rows_seen, len(rows))
        return rows, state

    def _step(self, rows: list[_Row], state: State | None) -> tuple[list[_Row], State | None]:
        if state is None:  # rows without a batch state: a bug in join/keep, not a caller's error
            raise RuntimeError("active rows but no batch state")
        tokens = [row.pending_token for row in rows]
        if any(token is None for token in tokens):
            raise RuntimeError("an active row has no pending token")
        with self.lock, torch.inference_mode():
            logits, state = self.model.step(state, [int(token) for token in tokens if token is not None])
        self.steps += 1
        for i, row in enumerate(rows):
            row.choose(logits[i])
        return rows, state

    def _finish(self, rows: list[_Row], state: State | None) -> tuple[list[_Row], State | None]:
        done = [i for i, row in enumerate(rows) if row.sequence.finished or row.error is not None]
        if not done:
            return rows, state
        for i in done:
            error = rows[i].error
            if error is not None:
                rows[i].future.set_exception(error)
            else:
                rows[i].future.set_result(rows[i].sequence)
        finished = set(done)
        keep = [i for i in range(len(rows)) if i not in finished]
        state = self.model.keep(state, keep) if (keep and state is not None) else None
        return [rows[i] for i in keep], state

# -- the real model -------------------------------------------------------------------------
@dataclass
class KVState:
    cache: Any  # transformers DynamicCache, rows x heads x length x head_dim per layer
    mask: torch.Tensor  # rows x length, 0 where a row is left-padded

class CausalLMStepModel:
    """``StepModel`` over a transformers causal LM with a dynamic key/value cache.

    Rows of different lengths share one cache, left-padded with zeros and masked out. Each
    row's positions are counted from its own first real token (``position_ids``), and keys are
    stored already rotated, so padding changes nothing a row attends to: greedy decoding in a
    batch gives the single-stream tokens (up to float rounding of different matrix shapes).
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def prefill(self, prompt_ids: list[int]) -> tuple[torch.Tensor, KVState]:
        from transformers import DynamicCache

        ids = torch.tensor([prompt_ids], dtype=torch.long)
        # Only the last position's logits are needed: skipping the rest saves a prompt-length
        # x vocabulary product (the largest single matrix product of a prefill).
        out = self.model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True, logits_to_keep=1)
        return out.logits[0, -1], KVState(out.past_key_values, torch.ones_like(ids))

    def step(self, state: KVState, tokens: list[int]) -> tuple[torch.Tensor, KVState]:
        positions = state.mask.sum(dim=1, keepdim=True)
        mask = torch.cat([state.mask, torch.ones((len(tokens), 1), dtype=state.mask.dtype)], dim=1)
        out = self.model(input_ids=torch.tensor(tokens, dtype=torch.long)[:, None], attention_mask=mask,
                         position_ids=positions, past_key_values=state.cache, use_cache=True)
        return out.logits[:, -1], KVState(out.past_key_values, mask)

    def join(self, state: KVState | None, other: KVState) -> KVState:
        if state is None:
            return KVState(_slab_cache(_layers(other.cache)), other.mask)
        length = max(state.mask.shape[1], other.mask.shape[1])
        layers = []
        for mine, theirs in zip(_layers(state.cache), _layers(other.cache), strict=True):
            layers.append(tuple(torch.cat([_pad_left(a, length, dim=2), _pad_left(b, length, dim=2)], dim=0)
                                for a, b in zip(mine, theirs, strict=True)))
        mask = torch.cat([_pad_left(state.mask, length, dim=1), _pad_left(other.mask, length, dim=1)], dim=0)
        return KVState(_slab_cache(layers), mask)

    def keep(self, state: KVState, rows: list[int]) -> KVState | None:
        if not rows:
            return None
        index = torch.tensor(rows, dtype=torch.long)
        mask = state.mask[index]
        # Columns that are padding for every remaining row are dead weight: cut them.
        first = int(mask.any(dim=0).nonzero()[0])
        layers = [(k[index, :, first:], v[index, :, first:]) for k, v in _layers(state.cache)]
        return KVState(_slab_cache(layers), mask[:, first:])


def _slab_cache(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layers = [_slab_layer(keys, values) for keys, values in layers]
    return cache


def _slab_layer(keys: torch.Tensor, values: torch.Tensor) -> Any:
    """A cache layer that appends in place into spare capacity.

    transformers' ``DynamicLayer`` concatenates the whole cache at every step: with 16 rows of
    a few hundred tokens that copy took ~40% of a decoding step on a CPU (measured with
    torch.profiler). Writing into a pre-allocated slab and handing out a view does not copy.
    """
    from transformers.cache_utils import DynamicLayer

    class SlabLayer(DynamicLayer):
        def __init__(self) -> None:
            super().__init__()
            rows, heads, length, dim = keys.shape
            capacity = length + _SLAB_SPARE
            self._keys = keys.new_zeros((rows, heads, capacity, dim))
            self._values = values.new_zeros((rows, heads, capacity, dim))
            self._keys[:, :, :length] = keys
            self._values[:, :, :length] = values
            self.length = length
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True
            self._expose()

        def _expose(self) -> None:
            self.keys = self._keys[:, :, : self.length]
            self.values = self._values[:, :, : self.length]

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            added = key_states.shape[-2]
            if self.length + added > self._keys.shape[2]:
                grow = max(_SLAB_SPARE, added)
                self._keys = torch.cat([self._keys, self._keys.new_zeros(_with_dim(self._keys, 2, grow))], dim=2)
                self._values = torch.cat([self._values, self._values.new_zeros(_with_dim(self._values, 2, grow))],
                                         dim=2)
            self._keys[:, :, self.length : self.length + added] = key_states
            self._values[:, :, self.length : self.length + added] = value_states
            self.length += added
            self._expose()
            return self.keys, self.values

    return SlabLayer()


_SLAB_SPARE = 128  # tokens of headroom per allocation: a copy every 128 steps, not every step


def _with_dim(tensor: torch.Tensor, dim: int, size: int) -> list[int]:
    shape = list(tensor.shape)
    shape[dim] = size
    return shape


def _layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]

def _pad_left(tensor: torch.Tensor, length: int, *, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    return torch.cat([tensor.new_zeros(_with_dim(tensor, dim, missing)), tensor], dim=dim)

def decode_all(batcher: ContinuousBatcher[Any], sequences: list[Sequence]) -> list[Sequence]:
    """Submit several sequences at once and wait for all (tests, benchmarks)."""
    return [f.result() for f in batcher.submit_many(sequences)]

CancelCheck = Callable[[], bool]
