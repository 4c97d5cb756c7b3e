"""Separating whole videos with a trained run: `Separator.from_run(run).separate_video(path)`.

Modules, one job each:
  api         Separator (the public API) and the motion embedding it may bring
  windows     audio windows, the frames each sees, overlap-add weights
  frames      decoding a video's frames once, the frame net on the wanted ones
  masks       the model's masks over the windows: energy maps and region waveforms
  regions     sounding cells grouped into sources (Otsu, k-means); pixels, boxes, lattice cells
  outputs     VideoSeparation and the files written for the page
  maps        spectrogram, mask and heat-map pictures
  page        the HTML pages (a separation folder, `eval --html`)
  separators  the mixture separators that `pixelplayer eval` scores (models, oracles, baselines)
"""

from pixelplayer.separation.api import MAP_FPS, Separator
from pixelplayer.separation.outputs import VideoSeparation

__all__ = ["MAP_FPS", "Separator", "VideoSeparation"]
