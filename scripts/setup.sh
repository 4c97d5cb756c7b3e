#!/usr/bin/env bash
# Set up everything on a fresh Debian machine: system packages, a virtual environment in .venv,
# torch (CPU build pinned first, so pip does not pull CUDA packages) and the project.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
ldconfig -p 2>/dev/null | grep -q libfluidsynth.so.3 || need+=(libfluidsynth3)
[ -f /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 ] || need+=(musescore-general-soundfont-small)
[ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || need+=(csound-soundfont)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
[ -f /usr/share/gcompris-qt/rcc/instruments.rcc ] || need+=(gcompris-qt-data)  # shaded drawings
# the held-out test sets (`data synth --holdout`): pictures and a SoundFont training never uses
[ -d /usr/share/tuxpaint/stamps/hobbies/music ] || need+=(tuxpaint-stamps-default)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need+=(timgm6mb-soundfont)
command -v npm >/dev/null || need+=(npm)  # the Iconify picture sets come from the npm registry
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
command -v chromium >/dev/null || need+=(chromium)  # the page tests open results in a real browser
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
if ! $py -c "import torch" 2>/dev/null; then
  $py -m pip install -q --upgrade pip
  $py -m pip install -q torch==2.13.0
fi
if ! $py -c "import pixelplayer, pytest, ruff, mir_eval, playwright" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  $py -m pip install -q -e ".[dev,tensorboard]"
  touch .venv/.installed
fi
# the training pictures: Iconify icon sets (emoji of several makers, icons), into the venv
assets=.venv/share/pixelplayer
packages=$($py -c "from pixelplayer.data.pictures import npm_packages; print(*npm_packages())")
missing=0
for p in $packages; do [ -f "$assets/node_modules/$p/icons.json" ] || missing=1; done
if [ $missing -eq 1 ]; then
  mkdir -p "$assets"
  npm install --prefix "$assets" --no-save --no-audit --no-fund --loglevel=error $packages
fi
echo "environment ready: .venv ($($py -c 'import torch; print("torch", torch.__version__)'))"
