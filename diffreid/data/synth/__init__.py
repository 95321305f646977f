"""Procedural persons: a Re-ID dataset of drawn people, for wherever no real dataset is at hand.

`synthesize(SynthConfig)` (`diffreid data synth`) writes Market-1501 layout
(`bounding_box_train/`, `query/`, `bounding_box_test/`, files
`{pid:04d}_c{cam}s1_{frame:06d}_00.jpg`) plus `manifest.jsonl` (file, pid, camid, split),
`attributes.json` (each identity's build, skin tone, hair, clothes, shoes, bag and hat in
words, keyed by "0001"...) and `manifest.json`.

Styles (`--style`), each a domain of its own:

- ``market`` (default): summer campus; 6 outdoor cameras, 128x64; daylight with mild
  colour casts; t-shirts, shorts and bright colours; ~20 images per identity.
- ``mall``: winter shopping mall; 8 indoor cameras, 160x64; shop fronts and tiled
  floors, fluorescent and warm casts; jackets, coats and dark colours; ~17 per identity.
- ``night``: street surveillance at night; 4 cameras, 96x48; dark facades under street
  lamps, strong colour casts, low saturation, heavy noise and blur; ~14 per identity.

A person varies between images by view (front, back, left, right: each shows other
things), gait, box position and scale, camera light and background, blur and
resolution, and occluders (poles, passers-by, objects). Everything is drawn from seeds
derived from (seed, style, pid, image), so output is byte-identical for a seed and a
person does not depend on how many were asked for.
"""

from diffreid.data.synth.styles import DEFAULT_STYLE, STYLES, Style, get_style
from diffreid.data.synth.writer import synthesize

__all__ = ["DEFAULT_STYLE", "STYLES", "Style", "get_style", "synthesize"]
