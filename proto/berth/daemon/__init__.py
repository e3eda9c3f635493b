"""Namespace for the Berth contracts (generated code lives below)."""
