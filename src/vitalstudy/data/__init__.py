"""ImageNet classes and the image sources a run draws from (bundled photos, a folder, ImageNet)."""
