"""AV-MIML (Gao, Feris & Grauman, ECCV 2018): object sound bases learnt from unlabeled video.

1. Every training video's audio is factorised by KL-NMF into M bases (`video_bases`).
2. A visual labeler gives each video weak labels: a small image classifier read from a
   checkpoint, or the dataset's class labels with a fraction corrupted (the paper's upper bound
   and its noisy-label study).
3. A deep multi-instance multi-label network maps the bag of bases to the labels; its
   basis-label relation map says which basis belongs to which object.
4. The bases that fire for a video's labels are collected per class (`collect_bases`).
5. A new mixture is separated by supervised NMF with the detected objects' bases stacked as a
   fixed W: soft masks W_j H_j / W H on the mixture spectrogram, mixture phase.

Steps 1-4 run in `pixelplayer train` (pixelplayer.training.miml), which keeps the bases, the
labels and the per-class dictionary in the run folder: bases.pt, labels.pt, dictionary.pt.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from pixelplayer.audio import istft
from pixelplayer.config import Config
from pixelplayer.data.dataset import SampleConfig, frame_times, load_frames, read_window
from pixelplayer.data.index import Clip
from pixelplayer.errors import PixelPlayerError
from pixelplayer.mixsep import SpecConfig, mixture_spec
from pixelplayer.models.frame import normalize_pixels
from pixelplayer.models.registry import load_model, register
from pixelplayer.run import Run

EPS = 1e-10
SEPARATORS = ("miml", "exemplar", "unmatched", "gaussian")
DICTIONARY = "dictionary.pt"  # in the run folder: the classes, their bases and exemplars

# model_kwargs of `model: miml` and their defaults
DEFAULTS = {
    "bases": 25,  # M: KL-NMF bases per training video
    "nmf_iters": 200,
    "nmf_seconds": 8.0,  # audio factorised per training video (centred window)
    "nmf_batch": 64,  # videos factorised at once
    "subconcepts": 4,  # K sub-concepts per label
    "hidden": 256,  # width of the shared per-basis FC layer
    "relation_threshold": 0.0,  # a basis fires for a label: softmax over bases above this
    "min_bases": 2,  # ...in videos where at least this many fire for a seen object
    "max_bases": 2000,  # per class, the strongest ones kept
    "sep_iters": 100,  # supervised NMF iterations when separating
    "labeler": "dataset",  # dataset | classifier
    "label_noise": 0.0,  # dataset labeler: fraction of videos given a wrong label
    "classifier": None,  # classifier labeler: checkpoint path
    "label_threshold": 0.3,  # classifier labeler: softmax probability for a label
}


def options(cfg: Config) -> dict:
    """model_kwargs completed with the defaults; an unknown key is an error."""
    unknown = sorted(set(cfg.model_kwargs) - set(DEFAULTS))
    if unknown:
        raise PixelPlayerError(
            f"unknown model_kwargs key {unknown[0]!r} for miml; valid: {', '.join(DEFAULTS)}"
        )
    return {**DEFAULTS, **cfg.model_kwargs}


def load_file(path: Path) -> dict:
    """A file of tensors and plain data (bases.pt, dictionary.pt); one line if unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, or holding pickled objects (not loaded)
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        raise PixelPlayerError(f"{path}: cannot read ({first}); delete it to recompute") from exc


# --- 1. bases of the training videos ------------------------------------------------------------


def _nmf(v: torch.Tensor, rank: int, iters: int, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    from pixelplayer.nmf import kl_nmf  # imported late: the module is shared with NMF baselines

    return kl_nmf(v, rank, iters=iters, **kw)


def video_magnitude(clip: Clip, sample: SampleConfig, spec: SpecConfig, seconds: float):
    """(bins, T) magnitude spectrogram of a centred `seconds` window of the clip's audio."""
    length = int(seconds * sample.sr)
    win = SampleConfig(**{**sample.__dict__, "audio_len": length})
    start = max(0.0, (clip.duration - seconds) / 2)
    wav = torch.from_numpy(read_window(clip, start, win))
    return mixture_spec(wav[None], spec)[0].abs()


def video_bases(
    clips: list[Clip], cfg: Config, opts: dict, device, progress: bool = False
) -> torch.Tensor:
    """(V, bins, M) KL-NMF bases (unit-sum columns) of each clip, factorised in batches."""
    out = []
    chunk = max(1, int(opts["nmf_batch"]))
    for i in tqdm(range(0, len(clips), chunk), desc="NMF bases", disable=not progress):
        mags = [
            video_magnitude(c, cfg.sample, cfg.spec, opts["nmf_seconds"])
            for c in clips[i : i + chunk]
        ]
        v = torch.stack(mags).to(device)  # (b, bins, T)
        w, _ = _nmf(v, opts["bases"], opts["nmf_iters"], seed=cfg.train.seed + i)
        out.append(w.float().cpu())
    return torch.cat(out)


# --- 2. weak labels from the frames -------------------------------------------------------------


@register("miml_classifier")
class FrameClassifier(nn.Module):
    """A small image classifier: the visual labeler's checkpoint format.

    Stored with models.registry.save_checkpoint(path, model, "miml_classifier",
    {"classes": [...], "width": w}); input ImageNet-normalised frames (B, 3, H, W)
    (`models.frame.normalize_pixels`).
    """

    def __init__(self, classes: list[str], width: int = 16):
        super().__init__()
        self.classes = list(classes)
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(2 * width, len(self.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))  # (B, classes) logits


class ClassifierLabeler:
    """Softmax over the chosen classes (those the classifier shares with the data), > threshold."""

    def __init__(self, path: str | Path, classes: list[str], threshold: float = 0.3, device="cpu"):
        self.model, _ = load_model(path)
        self.device = torch.device(device)
        self.model.to(self.device)
        missing = [c for c in classes if c not in self.model.classes]
        if missing:
            raise PixelPlayerError(f"{path}: the classifier does not know the class {missing[0]!r}")
        self.columns = [self.model.classes.index(c) for c in classes]
        self.threshold = threshold

    @torch.no_grad()
    def probs(self, frames: torch.Tensor) -> torch.Tensor:
        """(V, 3, T, H, W) frames of V videos -> (V, L) probabilities, averaged over the T."""
        v, c, t, h, w = frames.shape
        x = frames.permute(0, 2, 1, 3, 4).reshape(v * t, c, h, w).to(self.device)
        x = normalize_pixels(x)  # uint8 pixels from the dataset -> the classifier's input
        logits = self.model(x)[:, self.columns].float()
        return torch.softmax(logits, dim=1).reshape(v, t, -1).mean(1).cpu()

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """-> (V, L) multi-hot weak labels."""
        return (self.probs(frames) > self.threshold).float()


def corrupt_labels(classes: torch.Tensor, num_classes: int, fraction: float, seed: int):
    """(V,) class indices -> (V, L) one-hot labels; `fraction` of the videos get a wrong class."""
    gen = torch.Generator().manual_seed(seed)
    labels = classes.clone()
    count = int(round(fraction * len(classes)))
    if count and num_classes > 1:
        pick = torch.randperm(len(classes), generator=gen)[:count]
        # a shift of 1..L-1 always lands on another class
        shift = torch.randint(1, num_classes, (count,), generator=gen)
        labels[pick] = (classes[pick] + shift) % num_classes
    return F.one_hot(labels, num_classes).float()


def clip_frames(clip: Clip, sample: SampleConfig) -> torch.Tensor:
    """(3, T, S, S) frames around the middle of the clip."""
    start = max(0.0, (clip.duration - sample.audio_len / sample.sr) / 2)
    times = frame_times(start, sample)
    return torch.from_numpy(load_frames(clip, times, sample.fps, sample.frame_size))


def make_labeler(classes: list[str], opts: dict, device) -> ClassifierLabeler | None:
    """The classifier labeler the options name, or None for the dataset's labels."""
    if opts["labeler"] == "dataset":
        return None
    if opts["labeler"] == "classifier":
        if not opts["classifier"]:
            raise PixelPlayerError("labeler 'classifier' needs model_kwargs.classifier (a file)")
        return ClassifierLabeler(opts["classifier"], classes, opts["label_threshold"], device)
    raise PixelPlayerError(f"unknown labeler {opts['labeler']!r}; use dataset or classifier")


def weak_labels(
    clips: list[Clip],
    classes: list[str],
    cfg: Config,
    opts: dict,
    labeler: ClassifierLabeler | None,
) -> torch.Tensor:
    """(V, L) multi-hot weak labels of the training videos: from the classifier `labeler`, or
    with None from the dataset's classes (model_kwargs.label_noise of them corrupted)."""
    if labeler is None:
        idx = torch.tensor([classes.index(c.cls) for c in clips])
        return corrupt_labels(idx, len(classes), float(opts["label_noise"]), cfg.train.seed)
    return torch.cat(
        [
            labeler(torch.stack([clip_frames(c, cfg.sample) for c in clips[i : i + 32]]))
            for i in range(0, len(clips), 32)
        ]
    )


# --- 3. the deep MIML network -------------------------------------------------------------------


@register("miml")
class MIMLNet(nn.Module):
    """Bag of M bases (B, M, F) -> relation map (B, M, L) and label scores (B, L)."""

    def __init__(self, bins: int, labels: int, subconcepts: int = 4, hidden: int = 256):
        super().__init__()
        self.labels, self.subconcepts = labels, subconcepts
        self.fc = nn.Sequential(nn.Linear(bins, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.conv = nn.Sequential(
            nn.Conv1d(hidden, labels * subconcepts, 1),
            nn.BatchNorm1d(labels * subconcepts),
            nn.ReLU(),
        )

    def relation(self, bases: torch.Tensor) -> torch.Tensor:
        b, m, f = bases.shape
        x = bases * f  # unit-sum bases scaled to mean 1
        h = self.fc(x.reshape(b * m, f)).reshape(b, m, -1).transpose(1, 2)  # (B, hidden, M)
        z = self.conv(h).reshape(b, self.labels, self.subconcepts, m)
        return z.amax(dim=2).transpose(1, 2)  # max over sub-concepts -> (B, M, L)

    def forward(self, bases: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rel = self.relation(bases)
        return rel, rel.amax(dim=1)  # max over bases -> (B, L)


def hinge_targets(labels: torch.Tensor) -> torch.Tensor:
    """(B, L) multi-hot -> MultiLabelMarginLoss targets: label indices first, then -1."""
    b, n = labels.shape
    order = torch.argsort(labels, dim=1, descending=True, stable=True)
    return torch.where(torch.gather(labels, 1, order) > 0, order, torch.full_like(order, -1))


# --- 4. the per-class basis dictionary ----------------------------------------------------------


@torch.no_grad()
def relation_maps(net: MIMLNet, bases: torch.Tensor, device="cpu", chunk: int = 256):
    """(V, M, F) -> (V, M, L) relation maps, in eval mode."""
    net.eval().to(device)
    return torch.cat(
        [net.relation(bases[i : i + chunk].to(device)).cpu() for i in range(0, len(bases), chunk)]
    )


def collect_bases(
    rel: torch.Tensor, bases: torch.Tensor, labels: torch.Tensor, opts: dict
) -> list[torch.Tensor]:
    """Per class, the bases that fire for it -> list of L tensors (n_l, F).

    Each basis of a video goes to the one of the video's labels it relates to most (in a video
    of several objects the relation map says whose a basis is; in a solo video every basis goes
    to its one label). Of a label's bases, those whose softmax over the basis dimension of the
    label's relation column exceeds `relation_threshold` fire; a video counts only when at
    least `min_bases` fire (one stray basis is more often noise than the object). The
    `max_bases` strongest are kept per class. A class that collects nothing falls back to each
    of its videos' strongest `min_bases` bases.

    The default threshold 0 keeps every basis: a class's dictionary must cover all the notes
    its instrument plays, and the bases the relation map ranks low are needed for that
    (docs/results.md: a threshold of 0.1 keeps 1-2 bases a video and loses 13 dB of SDR).
    """
    soft = torch.softmax(rel, dim=1)  # (V, M, L)
    num = labels.shape[1]
    picked: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(num)]
    backup: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(num)]
    for v in range(len(labels)):
        present = labels[v].nonzero().flatten()
        if not len(present):
            continue
        owner = present[rel[v][:, present].argmax(dim=1)]  # (M,) the label each basis is given
        for l in present.tolist():
            w = soft[v, :, l]
            fire = ((w > opts["relation_threshold"]) & (owner == l)).nonzero().flatten()
            if len(fire) >= opts["min_bases"]:
                picked[l] += [(w[m].item(), bases[v, m]) for m in fire]
            top = w.topk(min(int(opts["min_bases"]), len(w))).indices
            backup[l] += [(w[m].item(), bases[v, m]) for m in top]
    out = []
    for l in range(num):
        chosen = sorted(picked[l] or backup[l], key=lambda p: -p[0])[: int(opts["max_bases"])]
        out.append(
            torch.stack([b for _, b in chosen]) if chosen else torch.zeros(0, bases.shape[-1])
        )
    return out


# --- 5./6. separation -----------------------------------------------------------------------------


def nmf_separate(
    mix: torch.Tensor, bases: list[list[torch.Tensor]], spec: SpecConfig, iters: int = 100
) -> torch.Tensor:
    """Supervised NMF: (B, L) mixtures, bases[b][j] (n_bj, F) for source j -> (B, N, L).

    W = the sources' bases side by side (fixed), H estimated by KL-NMF; source j gets the soft
    mask W_j H_j / W H on the mixture spectrogram. Each source's bases are cycled to the same
    count so the batch shares one W shape (a repeated column adds nothing the model lacks).
    """
    spec_c = mixture_spec(mix, spec)  # (B, F, T) complex
    v = spec_c.abs()
    n = len(bases[0])
    width = max(1, max(len(s) for item in bases for s in item))
    ws = []
    for item in bases:
        cols = []
        for s in item:
            s = s if len(s) else torch.full((1, v.shape[1]), 1.0 / v.shape[1])
            cols.append(s[torch.arange(width) % len(s)])
        ws.append(torch.cat(cols).T)  # (F, N * width)
    w = torch.stack(ws).to(v)
    w = w / (w.sum(1, keepdim=True) + EPS)
    w, h = _nmf(v, w.shape[-1], iters, W=w, update_w=False)
    parts = torch.einsum(
        "bfnr,bnrt->bnft", w.reshape(len(w), -1, n, width), h.reshape(len(h), n, width, -1)
    )  # (B, N, F, T)
    masks = parts / (parts.sum(1, keepdim=True) + EPS)
    return istft(masks * spec_c.unsqueeze(1), mix.shape[-1], spec.n_fft, spec.hop)


class MIMLSeparator:
    """One of the AV-MIML separators: `miml`, `exemplar`, `unmatched` or `gaussian`."""

    def __init__(
        self, run: str | Path, kind: str, device="cpu", labeler: ClassifierLabeler | None = None
    ):
        run = Run(run)
        self.cfg = run.config
        self.opts = options(self.cfg)
        d = load_file(run.file(DICTIONARY))
        self.classes = d["classes"]
        self.dictionary = [d["bases"][c] for c in self.classes]
        self.exemplars = [d["exemplar"][c] for c in self.classes]
        self.kind, self.device, self.labeler = kind, torch.device(device), labeler

    def detect(self, batch: dict) -> torch.Tensor:
        """(B, N) class index of each source's video: the labeler's top class, or the data's."""
        if self.labeler is None:
            return batch["classes"]
        b, n = batch["frames"].shape[:2]
        probs = self.labeler.probs(batch["frames"].flatten(0, 1))
        return probs.argmax(1).reshape(b, n)

    def source_bases(self, cls: list[int], item: int) -> list[torch.Tensor]:
        if self.kind == "miml":
            return [self.dictionary[c] for c in cls]
        if self.kind == "exemplar":
            return [self.exemplars[c] for c in cls]
        if self.kind == "unmatched":  # the j-th class not in the mixture
            absent = [c for c in range(len(self.classes)) if c not in cls] or list(cls)
            return [self.dictionary[absent[(j + item) % len(absent)]] for j in range(len(cls))]
        gen = torch.Generator().manual_seed(item)
        m, f = int(self.opts["bases"]), self.dictionary[0].shape[-1]
        return [torch.randn(m, f, generator=gen).abs() for _ in cls]

    @torch.no_grad()
    def __call__(self, batch: dict) -> torch.Tensor:
        cls = self.detect(batch).tolist()
        bases = [self.source_bases(c, i) for i, c in enumerate(cls)]
        mix = batch["mix"].to(self.device)
        iters = int(self.opts["sep_iters"])
        return nmf_separate(mix, bases, self.cfg.spec, iters).cpu()


def run_separators(run: str | Path, device=None) -> dict[str, MIMLSeparator]:
    """The AV-MIML separator of a run and the paper's three controls, for `pixelplayer eval`."""
    folder = Run(run)
    if not folder.file(DICTIONARY).is_file():
        raise PixelPlayerError(
            f"{folder.folder}: no {DICTIONARY}; train with `pixelplayer train --model miml`"
        )
    dev = device or "cpu"
    opts = options(folder.config)
    labeler = None
    if opts["labeler"] != "dataset":
        labeler = make_labeler(load_file(folder.file(DICTIONARY))["classes"], opts, dev)
    return {k: MIMLSeparator(run, k, dev, labeler) for k in SEPARATORS}


# --- visually aided denoising -----------------------------------------------------------------


def add_white_noise(wav: torch.Tensor, snr_db: float = 0.0, seed: int = 0) -> torch.Tensor:
    """(B, L) -> (B, L) with white noise at `snr_db` dB SNR per item."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(wav.shape, generator=gen)
    scale = wav.pow(2).mean(-1, keepdim=True).sqrt() / noise.pow(2).mean(-1, keepdim=True).sqrt()
    return wav + noise * scale * 10 ** (-snr_db / 20)


def denoise(
    noisy: torch.Tensor, object_bases: list[torch.Tensor], spec: SpecConfig, iters: int = 100
) -> torch.Tensor:
    """(B, L) noisy audio + each item's object bases -> (B, L) denoised.

    White noise has a flat expected spectrum, so one flat basis models it; the object's part
    of the supervised NMF is kept.
    """
    flat = torch.ones(1, spec.bins)
    return nmf_separate(noisy, [[b, flat] for b in object_bases], spec, iters)[:, 0]
