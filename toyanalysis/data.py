"""Synthetic sparse features, sampled fresh every step.

Feature ``i`` of a sample is zero with probability ``1 - density_i`` and
otherwise drawn from U[0, 1] (U[-1, 1] for the ``abs`` task). Features can be
tied in sets: a *correlated* set is active or zero together (values still
independent); in an *anticorrelated* set at most one member is active, member
``j`` with probability ``density_j``. ``one_hot`` data has exactly one active
feature per sample.

Every instance draws from its own generator (NumPy's SFC64, seeded with the
instance's seed), so an instance's data never depends on how many other
instances share the run. One uniform draw serves both the gate and the value
of an independent feature (``u < p ? u / p : 0`` has the right distribution),
which halves the cost of sampling compared with two draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from toyanalysis.config import RunConfig

# stream ids mixed into each instance's seed
INIT_STREAM, DATA_STREAM = 0, 1
#: Where the uniforms come from: NumPy's SFC64 on the host, or torch's generator on the device.
STREAMS = ("numpy", "torch")


def generators(seeds: np.ndarray, stream: int) -> list[np.random.Generator]:
    """One generator per instance for the given stream (init or data)."""
    return [
        np.random.Generator(np.random.SFC64(np.random.SeedSequence([int(s), stream])))
        for s in seeds
    ]


class Sampler:
    """Draws batches ``x (instance, feature, batch)`` for a run config (batch last: see models)."""

    def __init__(
        self,
        config: RunConfig,
        batch_size: int | None = None,
        *,
        device: str | torch.device | None = None,
        stream: str = "auto",
    ) -> None:
        self.n_instances, self.n_features = config.n_instances, config.n_features
        self.batch_size = batch_size or config.train.batch_size
        self.signed = config.model == "abs"
        self.device = torch.device(device or "cpu")
        if stream == "auto":
            stream = "numpy" if self.device.type == "cpu" else "torch"
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r} (streams: {', '.join(STREAMS)})")
        self.stream = stream
        self._seeds = config.instance_seeds()
        self._gens = generators(self._seeds, DATA_STREAM) if stream == "numpy" else []
        self._torch_gens = (
            [torch.Generator(device=self.device) for _ in self._seeds] if stream == "torch" else []
        )
        self._draws = 0  # batches drawn so far (the torch stream's whole state)
        density = config.instance_density()
        n = self.n_features
        groups: list[tuple[str, tuple[int, ...]]] = [(g.kind, g.features) for g in config.sets]
        if config.one_hot:
            groups = [("anticorrelated", tuple(range(n)))]
        self.n_gates = len(groups)
        lo = np.zeros_like(density)
        hi = density.copy()
        gate = np.arange(n)
        own = np.ones(n, dtype=bool)  # value comes from the gate draw itself
        for k, (kind, members) in enumerate(groups):
            members_list = list(members)
            gate[members_list] = n + k
            if kind == "correlated":
                own[members_list] = False
            else:
                cum = np.cumsum(density[:, members_list], axis=1)
                lo[:, members_list] = cum - density[:, members_list]
                hi[:, members_list] = cum
        self._lo = torch.tensor(lo[:, :, None], dtype=torch.float32, device=self.device)
        self._hi = torch.tensor(hi[:, :, None], dtype=torch.float32, device=self.device)
        self._width = self._hi - self._lo
        self._minus_inverse = -1.0 / self._hi
        self._gate = torch.tensor(gate, device=self.device) if groups else None
        self._own = torch.tensor(own, device=self.device)[:, None]
        self._shape = (self.n_instances, n + self.n_gates, self.batch_size)
        half = -(-self._shape[1] * self._shape[2] // 2) if stream == "numpy" else 0
        self._raw = np.empty((self.n_instances, half), dtype=np.uint64)
        self._draws_buffer = (
            torch.empty(self._shape, device=self.device) if stream == "torch" else None
        )

    def sample(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """A fresh batch; ``out`` (shaped like a batch) is filled instead of a new tensor.

        A training loop passes the same ``out`` every step, which saves
        allocating (and page-faulting) a tensor of the batch's size each time.
        """
        draws = torch.from_numpy(self._uniforms()) if self.stream == "numpy" else self._on_device()
        self._draws += 1
        if self._gate is None:
            # all features independent: the gate and the value come from one draw,
            # x = u/p where u < p else 0, written with threshold (faster than masks)
            minus_value = torch.mul(draws, self._minus_inverse, out=out)
            torch.threshold_(minus_value, -1.0, -0.5 if self.signed else 0.0)
            if self.signed:  # 2v - 1 where active, else 0
                return minus_value.mul_(-2.0).sub_(1.0)
            return minus_value.neg_()
        u = draws[:, : self.n_features]
        gates = draws[:, self._gate]
        active = (gates >= self._lo) & (gates < self._hi)
        value = torch.where(self._own, (gates - self._lo) / self._width, u)
        if self.signed:
            value = value.mul_(2.0).sub_(1.0)
        value = value.masked_fill_(~active, 0.0)
        return value if out is None else out.copy_(value)

    def _uniforms(self) -> np.ndarray:
        """U[0, 1) float32 draws of shape (instance, feature + gates, batch).

        Each 64-bit output of an instance's generator gives two 23-bit uniforms:
        the top bits of each half become the mantissa of a float in [1, 2).
        This is about 1.7 times as fast as ``Generator.random(dtype=float32)``.
        """
        raw = self._raw
        half = raw.shape[1]
        for k, g in enumerate(self._gens):
            raw[k] = g.bit_generator.random_raw(half)
        bits = raw.view(np.uint32)
        np.right_shift(bits, 9, out=bits)
        np.bitwise_or(bits, np.uint32(0x3F800000), out=bits)
        floats = bits.view(np.float32)
        floats -= 1.0
        _, rows, batch = self._shape
        return floats[:, : rows * batch].reshape(self._shape)

    def _on_device(self) -> torch.Tensor:
        """U[0, 1) draws made by torch on the sampler's device, one generator per instance.

        Counter-based: batch ``t`` of an instance comes from a generator seeded
        with a hash of (instance seed, data stream, t), so the whole state is
        the number of batches drawn, and no instance depends on another.
        """
        out = self._draws_buffer
        assert out is not None
        for k, (g, seed) in enumerate(zip(self._torch_gens, self._seeds)):
            key = np.random.SeedSequence([int(seed), DATA_STREAM, self._draws])
            g.manual_seed(int(key.generate_state(1, np.uint64)[0] >> np.uint64(1)))
            torch.rand(self._shape[1:], generator=g, device=self.device, out=out[k])
        return out

    def state(self) -> list[dict[str, Any]]:
        if self.stream == "torch":
            return [{"bit_generator": "torch", "draws": self._draws} for _ in self._seeds]
        return [dict(g.bit_generator.state) for g in self._gens]

    def set_state(self, states: list[dict[str, Any]]) -> None:
        if self.stream == "torch":
            self._draws = int(states[0]["draws"])
            return
        for g, state in zip(self._gens, states):
            g.bit_generator.state = state
