"""Quality control of motion correction (fr-qc): measures, bad frames, figures and the session report.

:mod:`.measures` holds the pure measures, :mod:`.recording` the streaming
QC of one stage-1 folder, :mod:`.figures` the matplotlib figures (Agg
backend, never a window), :mod:`.session` the session report.
"""
