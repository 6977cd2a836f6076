"""ReID: OSNet / timm backbones, GeM + BNNeck, CE + triplet (+center) training, feature extractor."""

from citytrack.models.reid.backbones import ReIDNet, build_backbone
from citytrack.models.reid.extractor import FeatureExtractor

__all__ = ["FeatureExtractor", "ReIDNet", "build_backbone"]
