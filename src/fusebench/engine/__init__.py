"""Training, evaluation, and analysis of evaluated models (MMPT curves, contributions)."""
