"""SpatialEmbedding instance segmentation (Neven et al. 2019), the mask source of PointTrack MOTS."""

from citytrack.models.spatial_embedding.cluster import Clusterer, InstanceMasks

__all__ = ["Clusterer", "InstanceMasks"]
