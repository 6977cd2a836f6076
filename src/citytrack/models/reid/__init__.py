"""citytrack.models.reid"""
