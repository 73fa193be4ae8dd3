"""suite2p 1.1.0 registration (rigid + block non-rigid) of channel 1, applied to channel 2 as well.

Runs in bench/.suite2p-venv. Usage: suite2p_register.py VIDEO.h5 OUT.h5 (datasets ch1, ch2: (T, H, W)).
suite2p's own defaults, on the CPU; the registered channels are written as ch1, ch2 (int16, suite2p's type).
"""
import sys

import h5py
import numpy as np
import torch
from suite2p import default_settings
from suite2p.registration import registration_wrapper

inp, out = sys.argv[1], sys.argv[2]
with h5py.File(inp, "r") as f:
    # suite2p registers int16 frames in place
    ch1 = np.clip(f["ch1"][:], 0, 32767).astype(np.int16)
    ch2 = np.clip(f["ch2"][:], 0, 32767).astype(np.int16)
settings = default_settings()["registration"]
torch.set_num_threads(torch.get_num_threads())
registration_wrapper(ch1, f_reg_chan2=ch2, settings=settings, device=torch.device("cpu"))
with h5py.File(out, "w") as f:
    f["ch1"], f["ch2"] = ch1, ch2
