"""The HTML result pages: what they link and escape, and how they behave in headless Chromium.

The browser tests need Debian's `chromium` on PATH and the `playwright` package; without them
they skip and the page-generation tests still run. Screenshots go to $PIXELPLAYER_ARTIFACTS
(default tests/artifacts/).
"""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelplayer.audio import save_audio
from pixelplayer.cli import main
from pixelplayer.errors import PixelPlayerError
from pixelplayer.separation.maps import mask_png, spectrogram_png
from pixelplayer.separation.page import (
    EvalItem,
    _json_for_script,
    write_eval_page,
    write_separation_page,
)
from pixelplayer.video import write_video

SR = 11025
W, H = 160, 96  # frame.jpg; even, as H.264 needs
ROWS, COLS = 2, 3  # the feature grid
ARTIFACTS = Path(os.environ.get("PIXELPLAYER_ARTIFACTS", Path(__file__).parent / "artifacts"))


def tone(seconds: float, freq: float, amp: float = 0.3) -> np.ndarray:
    # a plain sine; defined here so the file also runs under bare `pytest` (no tests package)
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def _box(r: int, c: int) -> tuple[int, int, int, int]:
    return c * W // COLS, r * H // ROWS, (c + 1) * W // COLS, (r + 1) * H // ROWS


def make_result(root: Path, **overrides) -> Path:
    """A small separation result folder as `pixelplayer separate` writes it, real media included:
    each cell a coloured block of the frame with a tone of its own pitch."""
    frame = np.zeros((H, W, 3), np.uint8)
    cells = []
    for r in range(ROWS):
        for c in range(COLS):
            x0, y0, x1, y1 = _box(r, c)
            frame[y0:y1, x0:x1] = (60 + 80 * c, 60 + 120 * r, 160)
            wav = f"cells/cell_{r}_{c}.wav"
            save_audio(root / wav, tone(0.5, 220.0 * (1 + r * COLS + c)), SR)
            cells.append({"row": r, "col": c, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "wav": wav})
    Image.fromarray(frame).save(root / "frame.jpg")
    energy = np.random.default_rng(0).random((4, ROWS, COLS)).astype(np.float32)
    np.save(root / "energy.npy", energy)
    heat = Image.fromarray((energy.mean(0) * 255).astype(np.uint8))
    heat.resize((W, H), Image.NEAREST).save(root / "energy.png")
    mix = tone(1.0, 330.0) + tone(1.0, 550.0)
    write_video(root / "overlay.mp4", np.repeat(frame[None], 8, axis=0), 8, mix, SR)
    save_audio(root / "mixture.wav", mix, SR)
    sources = []
    for i, freq in enumerate((330.0, 550.0)):
        stem = f"sources/source_{i}"
        save_audio(root / f"{stem}.wav", tone(1.0, freq), SR)
        Image.fromarray(frame).save(root / f"{stem}.png")
        spectrogram_png(root / f"{stem}_spec.png", tone(1.0, freq))
        sources.append(
            {"index": i, "wav": f"{stem}.wav", "png": f"{stem}.png"}
            | {"spectrogram": f"{stem}_spec.png", "cells": [[0, i], [1, i]]}
        )
    save_audio(root / "points/point_0.wav", tone(1.0, 660.0), SR)
    spectrogram_png(root / "points/point_0_spec.png", tone(1.0, 660.0))
    point = {
        "x": 20,
        "y": 30,
        "wav": "points/point_0.wav",
        "spectrogram": "points/point_0_spec.png",
    }
    manifest = {
        "video": "videos/duet.mp4",
        "width": W,
        "height": H,
        "duration": 1.0,
        "sr": SR,
        "fps": 8,
        "grid": [ROWS, COLS],
        "frame": "frame.jpg",
        "energy": "energy.npy",
        "energy_png": "energy.png",
        "overlay": "overlay.mp4",
        "mixture": "mixture.wav",
        "sources": sources,
        "points": [point],
        "cells": cells,
        "model": "runs/pp",
        "seconds": 1.5,
        **overrides,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Path:
    root = make_result(tmp_path_factory.mktemp("result"))
    write_separation_page(root)
    return root


def eval_items(count: int = 2, n: int = 2) -> list[EvalItem]:
    rng = np.random.default_rng(1)
    items = []
    for k in range(count):
        sources = np.stack([tone(1.0, 300.0 * (j + 1) + 20 * k, amp=0.2) for j in range(n)])
        masks = rng.random((n, 64, 44)).astype(np.float32)
        items.append(
            EvalItem(
                sr=SR,
                mixture=sources.sum(0),
                sources=sources,
                estimates=0.8 * sources,
                pred_masks=masks,
                gt_masks=(masks > 0.5).astype(np.float32),
                frames=rng.integers(0, 255, (n, 3, 32, 32, 3), dtype=np.uint8),
                metrics={"sdr": [5.0, float("nan")], "sir": [9.0, 1.0], "sar": [7.0, 2.0]},
                labels=["violin", "<b>flute</b>"],
                name=f"a{k} + b{k}",
            )
        )
    return items


class _Links(HTMLParser):
    """src/href of every element, and the tags seen."""

    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


# --- page generation, no browser -------------------------------------------------------------


def test_separation_page_links_every_file_relatively(result):
    page = _parse(result / "index.html")
    text = (result / "index.html").read_text()
    assert page.links and all((result / link).is_file() for link in page.links), page.links
    assert "//" not in " ".join(page.links)  # no CDN, no absolute URL: works from file://
    assert page.tags.count("audio") == 1 + 1 + 2 + 1  # pixel, mixture, 2 sources, 1 point
    assert page.tags.count("video") == 1
    block = text.split('<script type="application/json" id="cells">')[1].split("</script>")[0]
    cells = json.loads(block)
    assert len(cells) == ROWS * COLS
    assert cells[-1] == {
        "row": 1,
        "col": 2,
        "box": [106.0, 48.0, 160.0, 96.0],
        "wav": "cells/cell_1_2.wav",
    }


def test_missing_files_are_named_before_writing(tmp_path):
    root = make_result(tmp_path)
    (root / "sources" / "source_1_spec.png").unlink()
    (root / "cells" / "cell_1_2.wav").unlink()
    with pytest.raises(PixelPlayerError, match="2 missing") as info:
        write_separation_page(root)
    assert "sources/source_1_spec.png" in str(info.value)
    assert "cells/cell_1_2.wav" in str(info.value)
    assert not (root / "index.html").exists()
    (root / "manifest.json").unlink()
    with pytest.raises(PixelPlayerError, match="manifest.json"):
        write_separation_page(root)


def _bad_cell(**change) -> dict:
    return {"row": 0, "col": 0, "x0": 0, "y0": 0, "x1": 1, "y1": 1, "wav": "frame.jpg"} | change


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"mixture": "../elsewhere.wav"}, "inside the folder"),
        ({"overlay": "/tmp/overlay.mp4"}, "inside the folder"),
        ({"frame": None}, "malformed"),
        ({"cells": [_bad_cell(x0=float("nan"))]}, "ValueError"),  # JSON.parse rejects NaN
        ({"cells": [_bad_cell(row="<x>")]}, "ValueError"),
        ({"cells": [_bad_cell(wav="cells/none.wav")]}, "cells/none.wav"),
    ],
)
def test_bad_manifests(tmp_path, overrides, message):
    root = make_result(tmp_path, **overrides)
    with pytest.raises(PixelPlayerError, match=message):
        write_separation_page(root)


def test_strings_from_the_manifest_are_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    root = make_result(tmp_path, video=evil, model='"><img src=x onerror=alert(2)>')
    text = write_separation_page(root).read_text()
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "onerror=alert(2)&gt;" in text
    assert text.count("<script") == 2  # the cell table and the page's own script
    # nothing embedded as JSON can close its <script> block
    embedded = _json_for_script({"wav": "</script><!--<script>&"})
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert json.loads(embedded) == {"wav": "</script><!--<script>&"}


def test_spectrogram_and_mask_pictures(tmp_path):
    with Image.open(spectrogram_png(tmp_path / "s.png", tone(1.0, 300.0))) as img:
        assert img.size == (400, 200) and img.mode == "RGB"
    mask = np.zeros((64, 40), np.float32)
    mask[:32] = 1.0  # the low half of the frequencies
    with Image.open(mask_png(tmp_path / "m.png", mask)) as img:
        grey = np.asarray(img)
    assert grey.shape == (200, 400)
    assert grey[-20:].mean() > 250 and grey[:20].mean() < 5  # low frequencies at the bottom


def test_eval_page_writes_its_media(tmp_path):
    page = write_eval_page(tmp_path / "html", eval_items(), title="val <1>")
    parsed = _parse(page)
    text = page.read_text()
    assert all((page.parent / link).is_file() for link in parsed.links)
    assert parsed.tags.count("tr") == 1 + 2  # header + one row per mixture
    assert parsed.tags.count("audio") == 2 * (1 + 2 * 2)
    assert "val &lt;1&gt;" in text and "&lt;b&gt;flute&lt;/b&gt;" in text
    assert "SDR 5.00" in text and "SDR n/a" in text  # an unscored source
    assert "mean SDR 5.00 dB" in text


def test_eval_page_rejects_inconsistent_items(tmp_path):
    item = eval_items(1)[0]
    item.pred_masks = item.pred_masks[:1]
    with pytest.raises(PixelPlayerError, match="pred_masks has 1"):
        write_eval_page(tmp_path, [item])


def test_eval_html_from_the_command_line(prepared, tmp_path):
    """`pixelplayer eval RUN --html N` on a tiny model trained for one epoch on made-up data."""
    data = prepared
    tiny = [
        "model_kwargs={k: 4, frame: {width: 4}, sound: {ngf: 4, levels: 4}}",
        "sample.audio_len=8191",
        "sample.frame_size=32",
        "sample.stride_frames=4",
        "train.batch_size=2",
        "train.epoch_size=2",
        "train.epochs=1",
        "train.val_mixtures=2",
        "train.workers=0",
    ]
    train = ["train", "--data", str(data), "--out", str(tmp_path / "run")]
    assert main([*train, "--no-progress", *[a for t in tiny for a in ("--set", t)]]) == 0
    run = [str(tmp_path / "run"), "--data", str(data), "--n", "3", "--no-progress"]
    assert main(["eval", *run, "--separator", "model", "--html", "2"]) == 0
    page = tmp_path / "run" / "eval" / "html" / "index.html"
    parsed = _parse(page)
    assert parsed.tags.count("tr") == 1 + 2
    assert all((page.parent / link).is_file() for link in parsed.links)
    assert main(["eval", *run[1:], "--separator", "ibm", "--html"]) == 1  # no model, no masks


# --- in a real browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("no `chromium` on PATH (Debian: apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError as exc:  # not installed, or broken (e.g. greenlet missing)
        pytest.skip(f"playwright is not importable ({exc}); pip install playwright")
    with sync_api.sync_playwright() as pw:
        # the flag lets play() run without a click, as a test has none
        b = pw.chromium.launch(
            executable_path=exe, headless=True, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield b
        b.close()


@pytest.fixture
def open_page(browser):
    """Open a local HTML file; afterwards check that it fetched only local files, without
    script errors."""
    pages = []

    def open_(path: Path):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.requests, page.errors = [], []
        page.on("request", lambda r: page.requests.append(r.url))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(path.as_uri())
        pages.append(page)
        return page

    yield open_
    for page in pages:
        assert not page.errors
        assert all(u.startswith("file://") for u in page.requests), page.requests
        page.close()


# resolves, for each element matching the selector, once its metadata is in and it has played
MEDIA_STATE = """async (selector) => Promise.all([...document.querySelectorAll(selector)].map(
  (m) => new Promise((resolve) => {
    const report = async (extra) => {
      let played = false;
      if (!extra) {
        try { await m.play(); played = true; m.pause(); } catch (e) { played = String(e); }
      }
      resolve({src: m.currentSrc, duration: m.duration, played, ...extra});
    };
    if (m.readyState >= 1) return report();
    m.addEventListener("loadedmetadata", () => report(), {once: true});
    m.addEventListener("error", () => report({error: m.error && m.error.code}), {once: true});
    setTimeout(() => report({timeout: true}), 10000);
  })))"""


def _assert_playable(page, selector: str, count: int) -> None:
    states = page.evaluate(MEDIA_STATE, selector)
    assert len(states) == count
    for s in states:
        assert s["duration"] > 0 and s["played"] is True, s


def _save_screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_separation_page_in_browser(result, open_page):
    page = open_page(result / "index.html")
    _assert_playable(page, "audio[src]", 4)  # all but the pixel player, empty until a click
    _assert_playable(page, "video", 1)
    img = page.locator("#frame-img")
    box = img.bounding_box()
    assert box["width"] > 2 * W  # shown larger than frame.jpg: clicks must be scaled
    assert page.locator("#marker").is_hidden()
    for r in range(ROWS):
        for c in range(COLS):
            x0, y0, x1, y1 = _box(r, c)
            # a point off-centre in the cell, in displayed pixels
            x, y = x0 + 0.3 * (x1 - x0), y0 + 0.7 * (y1 - y0)
            img.click(position={"x": x * box["width"] / W, "y": y * box["height"] / H})
            assert page.get_attribute("#frame", "data-cell") == f"{r},{c}"
            assert page.text_content("#cell-label") == f"cell {r},{c}"
            wav = (result / f"cells/cell_{r}_{c}.wav").as_uri()
            assert page.eval_on_selector("#pixel-audio", "a => a.src") == wav
            _assert_playable(page, "#pixel-audio", 1)
            marker = page.locator("#marker").bounding_box()
            assert marker["x"] == pytest.approx(box["x"] + x0 * box["width"] / W, abs=1.5)
            assert marker["width"] == pytest.approx((x1 - x0) * box["width"] / W, abs=1.5)
    # the frame's far corner belongs to the last cell too
    img.click(position={"x": box["width"] - 0.5, "y": box["height"] - 0.5})
    assert page.get_attribute("#frame", "data-cell") == f"{ROWS - 1},{COLS - 1}"
    _save_screenshot(page, "separation-page.png")


def test_eval_page_in_browser(tmp_path, open_page):
    page = open_page(write_eval_page(tmp_path / "html", eval_items()))
    _assert_playable(page, "audio", 2 * (1 + 2 * 2))
    page.wait_for_function("() => [...document.images].every((i) => i.complete)")
    widths = page.eval_on_selector_all("img", "imgs => imgs.map((i) => i.naturalWidth)")
    assert len(widths) == 2 * (1 + 2 * (3 + 2 + 2)) and min(widths) > 0
    _save_screenshot(page, "eval-page.png")


def test_hostile_video_name_shows_as_text_in_browser(tmp_path, browser):
    """A video named like markup (`separate` on `<img src=x onerror=alert(1)>.mp4`) shows its
    name literally: no element injected, no script run, no dialog."""
    name = "<img src=x onerror=alert(1)>.mp4"
    root = make_result(tmp_path, video=f"videos/{name}", model='"><script>alert(2)</script>')
    path = write_separation_page(root)
    page = browser.new_page()
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_timeout(300)  # an injected onerror handler would have fired by now
        srcs = page.eval_on_selector_all("img", "imgs => imgs.map((i) => i.getAttribute('src'))")
        assert "x" not in srcs and all(s.endswith(".png") or s.endswith(".jpg") for s in srcs)
        assert page.locator("script").count() == 2  # the page's own: cell table and script
        assert name in page.text_content(".meta")
        assert '"><script>alert(2)</script>' in page.text_content(".meta")
        assert page.title() == f"PixelPlayer: {name}"
        assert not dialogs and not errors
    finally:
        page.close()
