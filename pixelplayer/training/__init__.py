"""Training: one loop (loop.py) for every model, each kind of model a Task (task.py).

loop.py      train(cfg, data, out): run folder, resume, budget, checkpoints, DDP; Trainer
task.py      the Task interface: build, prepare, batches, loss, validate, finish
masks.py     PixelPlayer and AMnet: mix-and-separate loss, validation SDR
build.py     the mask model a config names (AMnet's parts loaded from their runs)
ame.py       AMnet's audio-motion embedding: triplets, validation triplet accuracy
miml.py      AV-MIML: NMF bases kept in the run folder, weak labels, the MIML net
optim.py     parameter groups, optimizers, the learning-rate schedule
history.py   history.csv and TensorBoard
samplers.py  each process's share of an epoch's mixtures
init.py      --init: a new run starts from another run's weights
"""

from pixelplayer.training.build import build_model
from pixelplayer.training.loop import train

__all__ = ["build_model", "train"]
