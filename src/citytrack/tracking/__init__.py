"""citytrack.tracking"""
