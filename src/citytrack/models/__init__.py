"""citytrack.models"""
