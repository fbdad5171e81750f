"""Feature-visualization methods. They share one optimisation loop (`loop.py`) and differ in
their parameterisation, transforms and objective (VITAL: `vital.py`; baselines beside it)."""
