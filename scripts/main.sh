#!/usr/bin/env bash
# The main job on the built-in default data: set up, generate the MUSIC-like dataset, prepare it,
# train PixelPlayer's CPU preset (20 minutes), score it against the oracles, and separate one
# generated duet into its sounds and a map of where they come from, with a page to open.
# Everything lands in demo/ (or the folder given as $1); run again to resume where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-demo}
pp=.venv/bin/pixelplayer
$pp data synth "$out/synth" --duets 4
$pp data prepare "$out/synth/videos" "$out/prepared"
$pp data info "$out/prepared"
$pp train --config pixelplayer-cpu --data "$out/prepared" --out "$out/run"
$pp eval "$out/run" --data "$out/prepared" --n 300
duet=$(ls "$out"/synth/duets/*.mp4 | head -n 1)
$pp separate "$duet" --model "$out/run" --out "$out/separated"
echo "done: metrics in $out/run/eval/metrics.md"
echo "open $out/separated/index.html to look at and listen to the separated duet"
