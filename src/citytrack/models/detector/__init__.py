"""citytrack.models.detector"""
