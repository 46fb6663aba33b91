"""Experiment grid and report: the results table and plots of the README."""
