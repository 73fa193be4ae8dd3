"""Quality control of motion correction (fr-qc): measures, bad frames, figures and the session report.

:mod:`.measures` holds the pure measures (:mod:`.kernels` the blocked numpy
per-frame sums the pass computes them from), :mod:`.recording` the streaming
QC of one stage-1 folder (with the bad-frame rules, ``RULES``),
:mod:`.outputs` writes its three files, :mod:`.figures` draws with
matplotlib's Agg backend (files only, never a window) and :mod:`.session`
builds the session report.
"""
