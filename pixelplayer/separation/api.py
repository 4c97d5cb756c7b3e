"""The public API of `pixelplayer separate`: separate and localize the sounds of whole videos.

    from pixelplayer.separation import Separator

    separator = Separator.from_run("runs/pp")
    result = separator.separate_video("duet.mp4", sources=2, points=[(120, 80)], out="sep")
    result.source_waves  # (S, L) at result.sr; result.energy: (T, h, w) where the sound is

The video is seen and heard as players show it (turned by its display matrix, so a phone's
portrait video is portrait and points are pixels of that frame; the audio on the video's clock
by its start time, from the stream that holds sound: see `audio.load_soundtrack`), and the way
the network was trained, at the model's rates: frames as `frames` says, the sound cut into
windows as `windows` says, masks as `masks` says, sources grouped as `regions` says.

The frame net runs on the frames the windows need anyway (one every `stride_frames` / fps s:
3 s for the paper, 1 s for the CPU preset) and on more where those leave gaps, so that visual
features are at most 1 / `map_fps` s old (1 s by default); each sampled frame's energy map
takes the nearest analysed frame's features. `map_fps=None` analyses every sampled frame. The
sound part of the maps is per frame either way.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pixelplayer import checks
from pixelplayer.audio import SILENCE_RMS, load_soundtrack, rms
from pixelplayer.data.dataset import SampleConfig
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.models.amnet import AMNet
from pixelplayer.models.pixelplayer import PixelPlayer
from pixelplayer.motion_map import motion_map
from pixelplayer.run import BEST, Run, as_run
from pixelplayer.separation.frames import analyse_frames
from pixelplayer.separation.masks import VideoMasker
from pixelplayer.separation.outputs import VideoSeparation, write_outputs
from pixelplayer.separation.regions import (
    box_cells,
    cell_of,
    check_boxes,
    check_points,
    group_cells,
    lattice_cells,
    one_cell,
    sounding_groups,
)
from pixelplayer.separation.separators import MaskModelSeparator
from pixelplayer.separation.windows import wanted_frames, window_starts
from pixelplayer.video import probe_playable

MAP_FPS = 1.0  # fresh visual features per second for the energy maps (0: windows' own frames)
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"


class Separator:
    """A trained PixelPlayer applied to whole videos: sources, points, a lattice of cells.

    With an audio-motion embedding (`ame`, reading `ame_size` px grayscale frames; an AMnet
    run brings its own) it also maps where the motion goes with the sound.
    """

    def __init__(
        self,
        masker: MaskModelSeparator,
        sample: SampleConfig,
        run: str | Path = "",
        ame: AudioMotionEmbedding | None = None,
        ame_size: int = 64,
    ):
        model = masker.model
        if not isinstance(model, PixelPlayer):
            raise PixelPlayerError(
                f"{run}: a {type(model).__name__} has no pixel features; separate needs a "
                "PixelPlayer run"
            )
        self.masker, self.model, self.spec = masker, model, masker.spec
        self.sample, self.run = sample, str(run)
        self.device = masker.device
        self.video_masker = VideoMasker(
            model, masker.spec, masker.threshold, sample, masker.device, masker.dtype
        )
        self.ame, self.ame_size = ame, ame_size
        if ame is not None and abs(ame.sound.hop - sample.sr / sample.fps) > 1e-6:
            raise PixelPlayerError(
                f"the audio-motion embedding reads {sample.sr / ame.sound.hop:g} frames per "
                f"second, the run {sample.fps:g}: give one trained at the run's rate"
            )

    @classmethod
    def from_run(
        cls,
        run: str | Path | Run,
        checkpoint: str = BEST,
        device: str | None = None,
        motion: str | Path | Run | None = None,
    ) -> Separator:
        """The run's config and RUN/<checkpoint>, as `pixelplayer eval` loads them. An AMnet
        run separates with its appearance stage and maps motion with its embedding; `motion`,
        an AME or AMnet run folder, adds (or replaces) the embedding."""
        run = as_run(run)
        masker = MaskModelSeparator.from_run(run, checkpoint, device=device)
        sample = run.config.sample
        ame, size = None, 64
        if isinstance(masker.model, AMNet):  # AMnet's parts, by its attribute names
            ame, size = masker.model.ame, sample.motion_size
            masker.model = masker.model.appearance
        if motion is not None:
            ame, size = load_motion_embedding(motion, device=masker.device)
        return cls(masker, sample, run.folder, ame, size)

    def separate_video(
        self,
        path: str | Path,
        sources: int | None = None,
        points: list[tuple[int, int]] | None = None,
        out: str | Path | None = None,
        grid: int = 7,
        progress: bool = True,
        map_fps: float | None = MAP_FPS,
        boxes: list[tuple[int, int, int, int]] | None = None,
        audio_stream: int | None = None,
    ) -> VideoSeparation:
        """Separate the sounds of the video at `path`; with `out`, also write the files there.

        sources: number of sources (None: chosen from the data). points: (x, y) pixels of the
        original frame to hear. grid: the lattice of cells heard in `cell_waves`. map_fps: the
        energy maps' visual features are at most 1 / map_fps s old (0: the windows' own frames
        only, fastest; None: every sampled frame, slowest; see the module notes). boxes:
        (x0, y0, x1, y1) pixel boxes to hear, pooled over the cells whose centre they hold.
        audio_stream: which audio stream to hear (from 0; None: the first that holds sound).
        The video is seen and heard as players show it: turned by its display matrix (points
        and boxes are pixels of the turned frame), its audio placed on the video's clock.
        """
        start = time.perf_counter()
        path = Path(path)
        if sources is not None and sources < 1:
            raise PixelPlayerError(f"--sources {sources}: give at least 1")
        if grid < 1:
            raise PixelPlayerError(f"grid {grid}: give at least 1")
        checks.number("map_fps", map_fps, 0, 1000)
        info = probe_playable(path, "separate")
        points = [(int(x), int(y)) for x, y in (points or [])]
        check_points(points, info)
        boxes = [tuple(int(v) for v in b) for b in (boxes or [])]
        check_boxes(boxes, info)
        s, vm = self.sample, self.video_masker
        # (L,) on the video's clock; a silent one is heard too: nothing sounds, no source
        track = load_soundtrack(path, sr=s.sr, mono=True, stream=audio_stream, allow_silent=True)
        mix, silent = track.wav, rms(track.wav) < SILENCE_RMS
        if silent:
            track.notes.append("the soundtrack is silent: nothing sounds, no source")
        starts = window_starts(len(mix), s.audio_len, self.spec.hop)
        duration = max(info.duration, len(mix) / s.sr)
        bar = tqdm(
            total=round(duration, 1),
            desc=f"{path.name}: frames",
            bar_format=BAR_FORMAT,
            disable=not progress,
        )
        with bar, torch.inference_mode():
            want = wanted_frames(starts, s, duration, map_fps)
            gray_size = self.ame_size if self.ame is not None else None
            frames = analyse_frames(
                path, info, s, want, vm.frame_features, out is not None, gray_size, bar, duration
            )
            motion = None
            if self.ame is not None:
                motion = motion_map(self.ame, np.stack(frames.gray), mix, self.device)
            bar.reset(total=round(duration, 1))
            bar.set_description_str(f"{path.name}: sound")
            sound, window_vis, energy, sounding = vm.windows(mix, starts, frames, bar)
            feat = tuple(energy.shape[1:])  # (h, w)
            sure = None
            if silent:  # the maps dark, whatever the model makes of silence
                energy.zero_()
                if sounding is not None:
                    sounding.zero_()
                labels, thr = np.full(feat, -1, np.int64), 0.0
                sure = None if sounding is None else np.zeros(0, np.float32)
            elif sounding is not None:  # the model says which cells sound
                labels, sure = sounding_groups(sounding.numpy(), sources)
                thr = 0.5
            else:  # the loudest cells, by a threshold on this video's energy
                cell_vis = window_vis.mean(0).permute(1, 2, 0).numpy()  # (h, w, K)
                labels, thr = group_cells(cell_vis, energy.mean(0).numpy(), sources)
            sources_at = [labels == i for i in range(int(labels.max()) + 1)]
            point_cells = np.array(
                [cell_of(x, y, info.width, info.height, feat) for x, y in points], np.int64
            ).reshape(-1, 2)
            lattice = lattice_cells(grid, info.width, info.height, feat)
            regions = [
                *sources_at,
                *(one_cell(r, c, feat) for r, c in [*point_cells, *lattice]),
                *(box_cells(b, info.width, info.height, feat) for b in boxes),
            ]
            waves = vm.region_waves(mix, starts, sound, window_vis, np.stack(regions))
        parts = np.cumsum([len(sources_at), len(points), len(lattice)])
        src_waves, point_waves, cell_waves, box_waves = np.split(waves, parts)
        result = VideoSeparation(
            sr=s.sr,
            mixture=mix,
            frame_times=np.arange(frames.count) / s.fps,
            energy=energy.numpy().astype(np.float32),
            labels=labels,
            source_waves=src_waves,
            point_waves=point_waves,
            cell_waves=cell_waves,
            source_masks=np.array(sources_at, bool).reshape(-1, *feat),
            points=points,
            point_cells=point_cells,
            lattice_cells=lattice,
            grid=grid,
            fps=float(s.fps),
            width=info.width,
            height=info.height,
            duration=duration,
            threshold=thr,
            boxes=boxes,
            box_waves=box_waves,
            motion=motion,
            audio_stream=track.stream,
            audio_offset=track.offset,
            notes=track.notes,
            sounding=None if sounding is None else sounding.numpy().astype(np.float32),
            sure=sure,
        )
        result.seconds = time.perf_counter() - start
        if out is not None:
            write_outputs(result, frames.display, path, Path(out), self.run, start)
            result.seconds = time.perf_counter() - start
        return result


def load_motion_embedding(
    run: str | Path | Run, device: torch.device | str | None = None
) -> tuple[AudioMotionEmbedding, int]:
    """The audio-motion embedding of an AME or AMnet run -> (model, its frame size)."""
    run = as_run(run)
    need = "--motion needs an AME or AMnet run"
    model, _ = run.load_model(AMNet, AudioMotionEmbedding, needed=need)
    sample = run.config.sample
    if isinstance(model, AMNet):  # AMnet's embedding, by its attribute name
        model, size = model.ame, sample.motion_size
    else:
        size = sample.frame_size
    return model.to(device or "cpu"), size
