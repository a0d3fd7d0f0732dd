"""Analyses of finished runs: loss landscapes and sharpness (:mod:`mmbalance.analysis.landscape`,
:mod:`mmbalance.analysis.sharpness`), written to a run directory by
:mod:`mmbalance.analysis.landscape_run`."""
