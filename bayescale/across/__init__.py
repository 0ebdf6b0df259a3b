"""Analyses across fits and refits: comparison, model averages, backtests, calibration, SBC, trends."""
