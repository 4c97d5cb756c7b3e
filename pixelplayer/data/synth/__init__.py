"""`pixelplayer data synth`: a MUSIC-like dataset of solo (duet, trio) instrument videos.

Every clip is an instrument picture on a random background with 1-3 silent distractor objects,
playing a random melody rendered from a General MIDI SoundFont with FluidSynth. The instrument
jolts and swells with its own notes (onsets and loudness envelope), so the picture's motion
carries information about the sound, as a player's motion does in MUSIC; distractors drift
independently of the audio.

Layout of OUT:
  videos/<class>/<id>.mp4      solo clips (H.264 + AAC), one folder per class
  duets/<id>.mp4               duets: two instruments in one frame, mixture audio
  trios/<id>.mp4               trios: three instruments in one frame
  stems/<id>.wav               lossless solo audio (the ground truth of a solo clip)
  stems/<id>_0.wav, _1.wav     the parts of a duet (trio: _2 too); their sum is its audio
  meta/<id>.json               classes, programs, seed, per-frame boxes, notes, stem paths
  synth.json                   the settings and class table of the whole run

The modules, from the notes to the dataset:
  instruments   the classes: General MIDI program, range, playing style
  compose       random pieces (notes) in an instrument's style
  soundfont     the SoundFonts (training, held out) and FluidSynth rendering
  backgrounds   backdrops and textures
  scene         sprites, motion with the sound, placement, occluders, compositing
  clip          one clip: its parts played, its scene drawn (`render_clip`)
  world         the dataset: jobs, resume, workers, checks (`synthesize`)
"""

# names other code imports from here
from pixelplayer.data.synth.scene import picture_alpha
from pixelplayer.data.synth.soundfont import DEFAULT_SOUNDFONT

__all__ = ["DEFAULT_SOUNDFONT", "picture_alpha"]
