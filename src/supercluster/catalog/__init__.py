"""Cited catalog data (YAML); read through supercluster.spec.catalog."""
