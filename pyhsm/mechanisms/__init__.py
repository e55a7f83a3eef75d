"""Mechanism families (families.py lists them); `registry` loads them on first use."""
