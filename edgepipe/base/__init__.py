"""Plumbing every stage may import: the error type, atomic writes, the one
TensorFlow/Keras import, and safe model loading. Imports nothing above it."""
