"""Temporal binning as a reader adapter."""

from __future__ import annotations

import math

import numpy as np

from .preprocess import bin_frames

__all__ = ["BinnedReader", "binned"]


class BinnedReader:
    """Frames of ``reader`` averaged in groups of ``bin_size`` (see :func:`bin_frames`).

    Frame ``i`` of the adapter is the mean of raw frames
    ``i*bin_size .. (i+1)*bin_size - 1`` (the last group may be shorter).
    """

    def __init__(self, reader, bin_size: int):
        if bin_size < 1:
            raise ValueError("bin_size must be >= 1")
        self.raw = reader
        self.bin_size = bin_size
        t, h, w, c = reader.shape
        self.shape = (math.ceil(t / bin_size), h, w, c)
        self.dtype = reader.dtype
        self.path = reader.path

    def __len__(self):
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        b = self.bin_size
        raw = self.raw.read(start * b, min(stop * b, self.raw.shape[0]))
        return bin_frames(raw, b)

    def read_indices(self, indices) -> np.ndarray:
        out = np.empty((len(indices),) + self.shape[1:], dtype=self.dtype)
        for n, i in enumerate(indices):
            out[n] = self.read(i, i + 1)[0]
        return out

    def close(self):
        self.raw.close()


def binned(reader, bin_size: int):
    """``reader`` itself for ``bin_size == 1``, else a :class:`BinnedReader`."""
    return reader if bin_size == 1 else BinnedReader(reader, bin_size)
