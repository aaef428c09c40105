"""Encoders, fusions, missing-modality strategies and the multimodal model."""
