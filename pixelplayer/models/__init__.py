"""Networks of "The Sound of Pixels": frame net, sound U-Net, synthesizer, and the registry;
AMnet's audio-motion embedding and motion stage.

Importing the package registers every built-in model (their @register), so the registry knows
them whatever module asks it first; the registry itself imports no model.
"""

from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.models.amnet import AMNet
from pixelplayer.models.frame import FrameNet, ResNet18, load_torchvision_weights
from pixelplayer.models.pixelplayer import PixelPlayer
from pixelplayer.models.registry import (
    build,
    known_models,
    load_checkpoint,
    load_model,
    register,
    save_checkpoint,
)
from pixelplayer.models.sound import UNet
from pixelplayer.models.synthesizer import InnerProd

__all__ = [
    "AMNet",
    "AudioMotionEmbedding",
    "FrameNet",
    "InnerProd",
    "PixelPlayer",
    "ResNet18",
    "UNet",
    "build",
    "known_models",
    "load_checkpoint",
    "load_model",
    "load_torchvision_weights",
    "register",
    "save_checkpoint",
]
