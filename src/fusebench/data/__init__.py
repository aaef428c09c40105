"""Datasets, batches and modality patterns."""
