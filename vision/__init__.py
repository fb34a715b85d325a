"""vision: image classification by fine-tuning convolutional networks.

``ImageClassifier`` fine-tunes a torchvision backbone (or trains the small built-in
``SmallResNet`` from scratch) with the transfer-learning recipe: frozen-body head
training, discriminative learning rates, SGDR, progressive resizing, augmentation presets
and test-time augmentation. ``image_folder`` lists a class-per-folder tree;
``load_images`` decodes files once into an array.
"""

from __future__ import annotations

from vision.data import image_folder, load_images, read_image
from vision.estimator import ImageClassifier
from vision.model import ImageModel, SmallResNet

__all__ = [
    "ImageClassifier",
    "ImageModel",
    "SmallResNet",
    "image_folder",
    "load_images",
    "read_image",
]
