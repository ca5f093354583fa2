"""Key/value states of token sequences the model has already read, for the HF backend.

An agent's prompt at turn t is its prompt at turn t - 1, its reply and one observation
more, and the ``n`` samples of a request (or the Monte Carlo continuations from one state)
share one prompt. Without a cache every turn reads the whole conversation again, with
attention quadratic in its length; on CPU that reading is most of an episode's cost. Here
each prompt reads only the tokens past its longest prefix held in the cache, one prompt at
a time without padding, and identical prompts are read once; the batch then decodes from
the assembled, left-padded cache. After a batch, each row's prompt and generated tokens
are kept, so the next turn finds them. Entries are evicted least recently used beyond
``max_bytes``. vLLM and SGLang do the same on their side (prefix caching).

Results are exact up to floating-point rounding (a token's key and value do not depend on
what follows it); the cache lives as long as its policy, one stage, so a stage rerun after
a kill starts from the same empty cache and gives the same samples.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

KV = list[tuple[Any, Any]]  # per layer: keys, values of one sequence, [heads, tokens, dim]


class PrefixCache:
    def __init__(self, model: Any, max_bytes: int):
        self.model = model
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: OrderedDict[int, tuple[np.ndarray, KV, int]] = OrderedDict()
        self._next = 0
        self.read_tokens = 0  # prompt tokens the model read (the rest came from the cache)

    def longest_prefix(self, ids: np.ndarray) -> tuple[int | None, int]:
        """The entry sharing the longest prefix with ``ids`` and that prefix's length."""
        best, best_len = None, 0
        for key, (held, _, _) in self.entries.items():
            m = min(len(held), len(ids))
            if m <= best_len:
                continue
            differ = np.flatnonzero(held[:m] != ids[:m])
            common = int(differ[0]) if len(differ) else m
            if common > best_len:
                best, best_len = key, common
        return best, best_len

    def read(self, ids: list[int]) -> KV:
        """The keys and values of ``ids[:-1]`` (the last token is read while decoding)."""
        import torch

        want = np.asarray(ids[:-1], dtype=np.int64)
        key, common = self.longest_prefix(want)
        cache = DynamicCache(config=self.model.config)
        if key is not None:
            self.entries.move_to_end(key)
            for layer, (k, v) in enumerate(self.entries[key][1]):
                cache.update(k[None, :, :common], v[None, :, :common], layer)
        if common < len(want):
            rest = torch.tensor(want[None, common:], device=self.model.device)
            with torch.no_grad():
                self.model(input_ids=rest, cache=cache, use_cache=True, logits_to_keep=1)
            self.read_tokens += len(want) - common
        layers: list[Any] = cache.layers  # DynamicLayers (``supported``)
        return [(layer.keys[0], layer.values[0]) for layer in layers]

    def assemble(self, kvs: list[KV], width: int, room: int = 0) -> Any:
        """One left-padded cache of ``width`` positions for a batch of rows, with ``room``
        for as many more (decoding then writes in place instead of concatenating)."""
        import torch

        cache = DynamicCache(config=self.model.config)
        for layer in range(len(kvs[0])):
            k0 = kvs[0][layer][0]
            shape = (len(kvs), k0.shape[0], width + room, k0.shape[2])
            keys = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
            values = torch.zeros_like(keys)
            for row, kv in enumerate(kvs):
                n = kv[layer][0].shape[1]
                keys[row, :, width - n : width] = kv[layer][0]
                values[row, :, width - n : width] = kv[layer][1]
            cache.layers[layer] = RoomyLayer(keys, values, width)
        return cache

    def keep(self, ids: list[int], cache: Any, row: int, start: int) -> None:
        """Keep row ``row`` of a batch cache: ``ids`` read from position ``start`` on (as
        many of them as the cache holds)."""
        end = min(start + len(ids), cache.layers[0].keys.shape[2])
        held = [(layer.keys[row, :, start:end].clone(), layer.values[row, :, start:end].clone())
                for layer in cache.layers]  # fmt: skip
        ids = ids[: end - start]
        size = sum(k.numel() * k.element_size() * 2 for k, _ in held)
        if size > self.max_bytes:
            return
        self.entries[self._next] = (np.asarray(ids, dtype=np.int64), held, size)
        self._next += 1
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, _, freed) = self.entries.popitem(last=False)
            self.bytes -= freed


class RoomyLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values are the first positions of buffers with room
    for more: an update writes into the room (once it is full, it concatenates, as
    ``DynamicLayer`` always does), so a decoded token costs no copy of the whole cache."""

    def __init__(self, keys: Any, values: Any, length: int):
        super().__init__()
        self.lazy_initialization(keys, values)
        self.room_keys, self.room_values = keys, values
        self.keys, self.values = keys[:, :, :length], values[:, :, :length]

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        if self.keys.data_ptr() != self.room_keys.data_ptr() or end > self.room_keys.shape[-2]:
            return super().update(key_states, value_states, *args, **kwargs)
        self.room_keys[:, :, start:end] = key_states
        self.room_values[:, :, start:end] = value_states
        self.keys, self.values = self.room_keys[:, :, :end], self.room_values[:, :, :end]
        return self.keys, self.values


def supported(model: Any) -> bool:
    """Whether ``model``'s cache holds full keys and values per layer (not sliding-window or
    recurrent states), the only kind a prefix can be cut from."""
    layers = DynamicCache(config=model.config).layers
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
