"""citytrack.multicam"""
