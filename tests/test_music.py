"""`pixelplayer data music`: the download loop against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import csv
import functools
import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from pixelplayer.cli import main
from pixelplayer.data.music import read_video_list, select_videos
from pixelplayer.data.ytdlp import INSTALL_HINT, format_spec, is_unavailable
from pixelplayer.errors import PixelPlayerError
from pixelplayer.video import write_video

pytest.importorskip("yt_dlp")

SR, FPS, SECONDS = 11025, 8, 3.5
# two classes x two ids; the last id is not on the server (404). The duet-style class name
# checks that a space in a class survives as a folder name through `data prepare`.
LIST = {
    "accordion": ["accAAAAAAA1", "accAAAAAAA2"],
    "acoustic_guitar violin": ["gtvBBBBBBB1", "goneCCCCCC1"],
}
SERVED = ["accAAAAAAA1", "accAAAAAAA2", "gtvBBBBBBB1"]


def _make_video(path: Path, seed: int) -> None:
    """A small clip with a moving square and a tone: long enough for `data prepare`."""
    n = int(SECONDS * FPS)
    frames = np.full((n, 48, 64, 3), 40 + 50 * seed, np.uint8)  # (T, H, W, 3)
    for t in range(n):
        frames[t, 16:32, 2 * t : 2 * t + 16] = 255
    time_axis = np.arange(int(SECONDS * SR)) / SR
    wav = (0.3 * np.sin(2 * np.pi * 220 * (seed + 1) * time_axis)).astype(np.float32)
    write_video(path, frames, FPS, wav, SR)


class _Handler(SimpleHTTPRequestHandler):
    """Serves the folder; records every request; answers 500 for the paths in `broken`."""

    requests: list[str]
    broken: set[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path in self.broken:
            self.send_error(500, "broken on purpose")
            return
        super().do_GET()

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    for seed, vid in enumerate(SERVED):
        _make_video(root / f"{vid}.mp4", seed)
    return root


@pytest.fixture
def server(served, monkeypatch):
    """(url template, request log, set of broken paths); sockets may only reach 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    connect = socket.socket.connect

    def local_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] != "127.0.0.1":
            raise OSError(f"test tried to reach {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
    requests: list[str] = []
    broken: set[str] = set()
    handler = type("Handler", (_Handler,), {"requests": requests, "broken": broken})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{{id}}.mp4", requests, broken
    httpd.shutdown()
    httpd.server_close()


def _write_list(path: Path, data) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _status(out: Path) -> dict[tuple[str, str], dict]:
    with open(out / "status.csv", newline="") as f:
        return {(r["class"], r["id"]): r for r in csv.DictReader(f)}


def _music(json_path: Path, out: Path, template: str, *extra: str) -> int:
    return main(["data", "music", "--json", str(json_path), "--out", str(out)] + [
        "--url-template", template, *extra
    ])  # fmt: skip


def test_download_resume_and_prepare(tmp_path, served, server, capsys):
    template, requests, _ = server
    lst, out = (
        _write_list(tmp_path / "MUSIC_solo_videos.json", {"videos": LIST}),
        tmp_path / "music",
    )

    assert _music(lst, out, template) == 0
    summary = capsys.readouterr().out
    assert "downloaded 3, skipped 0 already present, unavailable 1 (1 new), failed 0" in summary
    files = {(c, v): out / "videos" / c / f"{v}.mp4" for c, ids in LIST.items() for v in ids}
    for (_cls, vid), path in files.items():
        if vid in SERVED:
            assert path.read_bytes() == (served / f"{vid}.mp4").read_bytes()
        else:
            assert not path.exists()
    status = _status(out)
    assert Counter(r["status"] for r in status.values()) == {"ok": 3, "unavailable": 1}
    gone = status["acoustic_guitar violin", "goneCCCCCC1"]
    assert gone["status"] == "unavailable" and "404" in gone["message"]
    assert (out / "unavailable.txt").read_text() == "acoustic_guitar violin/goneCCCCCC1\n"
    assert not (out / ".tmp").exists()  # no partial download left behind

    # second run: nothing asked of the server, nothing rewritten
    mtimes = {p: p.stat().st_mtime_ns for p in files.values() if p.exists()}
    requests.clear()
    assert _music(lst, out, template) == 0
    summary = capsys.readouterr().out
    assert "downloaded 0, skipped 3 already present, unavailable 1 (0 new), failed 0" in summary
    assert requests == []
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    # --retry-unavailable asks again for the missing one only
    assert _music(lst, out, template, "--retry-unavailable") == 0
    assert "unavailable 1 (1 new)" in capsys.readouterr().out
    assert requests and set(requests) == {"/goneCCCCCC1.mp4"}

    prepared = tmp_path / "prepared"
    assert main(["data", "prepare", str(out / "videos"), str(prepared), "--workers", "1"]) == 0
    with open(prepared / "all.csv", newline="") as f:
        classes = Counter(r["class"] for r in csv.DictReader(f))
    assert classes == {"accordion": 2, "acoustic_guitar violin": 1}
    with open(prepared / "rejected.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 1  # the header: every downloaded file was usable


def test_errors_are_retried_and_partial_files_finished(tmp_path, served, server, capsys):
    template, requests, broken = server
    lst = _write_list(tmp_path / "list.json", {"videos": {"accordion": SERVED[:2]}})
    out = tmp_path / "music"
    # a partial download left by a killed run: its first bytes only
    part = out / ".tmp" / "accordion" / f"{SERVED[1]}.mp4.part"
    part.parent.mkdir(parents=True)
    part.write_bytes((served / f"{SERVED[1]}.mp4").read_bytes()[:500])
    broken.add(f"/{SERVED[0]}.mp4")

    assert _music(lst, out, template, "--workers", "2") == 0
    summary = capsys.readouterr().out
    assert "downloaded 1, skipped 0 already present, unavailable 0 (0 new), failed 1" in summary
    assert "500" in _status(out)["accordion", SERVED[0]]["message"]
    assert (out / "unavailable.txt").read_text() == ""
    finished = out / "videos" / "accordion" / f"{SERVED[1]}.mp4"
    assert finished.read_bytes() == (served / f"{SERVED[1]}.mp4").read_bytes()
    assert not part.exists()  # taken up (continued or restarted), not left beside it

    broken.clear()  # the server is back: the failed one is tried again
    requests.clear()
    assert _music(lst, out, template) == 0
    assert "downloaded 1, skipped 1 already present" in capsys.readouterr().out
    assert set(requests) == {f"/{SERVED[0]}.mp4"}
    assert _status(out)["accordion", SERVED[0]]["status"] == "ok"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"videos": {"accordion": ["a"', "not valid JSON (line 1"),
        ('{"vids": {}}', 'no "videos" key'),
        ('{"videos": {}}', '"videos" is empty'),
        ('{"videos": {"accordion": "abc"}}', "class 'accordion' holds str"),
        ('{"videos": {"accordion": ["ok_id", "../etc"]}}', "item 1: '../etc' is not a video id"),
        ('{"videos": {"../up": ["abc"]}}', "class name '../up' cannot be a folder name"),
        ('{"videos": {"a": ["x"], "a": ["y"]}}', "key 'a' appears twice"),
    ],
)
def test_bad_list_is_one_line(tmp_path, capsys, text, fragment):
    lst = _write_list(tmp_path / "list.json", text)
    assert _music(lst, tmp_path / "out", "http://127.0.0.1:9/{id}") == 1
    err = capsys.readouterr().err
    assert err.startswith("pixelplayer: error: ") and err.count("\n") == 1
    assert fragment in err and str(lst) in err
    assert not (tmp_path / "out").exists()  # nothing made before the list is known good


def test_missing_yt_dlp_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "yt_dlp", None)  # `import yt_dlp` now raises ImportError
    lst = _write_list(tmp_path / "list.json", {"videos": LIST})
    assert _music(lst, tmp_path / "out", "http://127.0.0.1:9/{id}") == 1
    assert INSTALL_HINT in capsys.readouterr().err
    # and the module itself imports without it
    code = "import sys; sys.modules['yt_dlp'] = None; import pixelplayer.data.music"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


def test_selection_and_error_kinds(tmp_path):
    videos = read_video_list(_write_list(tmp_path / "l.json", {"videos": LIST}))
    picked = select_videos(videos, ["acoustic_guitar_violin"], limit=1)
    assert [(v.cls, v.vid) for v in picked] == [("acoustic_guitar violin", "gtvBBBBBBB1")]
    assert len(select_videos(videos)) == 4
    with pytest.raises(PixelPlayerError, match="unknown class 'cello'"):
        select_videos(videos, ["cello"])
    gone = [
        "ERROR: [youtube] x: Private video. Sign in if you've been granted access",
        "ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader",
    ]
    retry = [
        "ERROR: [youtube] x: Sign in to confirm you're not a bot",
        "ERROR: [youtube] x: Requested format is not available",
    ]
    assert all(is_unavailable(Exception(m)) for m in gone)
    assert not any(is_unavailable(Exception(m)) for m in retry)
    assert "height<=?360" in format_spec(360, ffmpeg=False)
    assert "+ba" not in format_spec(360, ffmpeg=False) and "+ba" in format_spec(360, ffmpeg=True)
