"""Runs: reading and checking run tables, the bundled data sets, training-curve envelopes.

Imports only :mod:`bayescale.base` (beside :mod:`bayescale.core`, on the same floor).
"""
