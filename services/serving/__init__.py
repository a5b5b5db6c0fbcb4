"""Serving QuickTurn\x27s stages: the Triton launcher and model cores, the Riva API facade."""
