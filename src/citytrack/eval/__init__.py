"""citytrack.eval"""
