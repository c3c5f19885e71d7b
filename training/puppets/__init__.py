"""The puppets benchmark: a second seeded generator of annotated clips, with its own code, look and classes
(numpy + PyAV, no torch), in the same dataset format as training.synth.

An anti-aliased articulated puppet in fixed clothes stands (or strolls), traces one of the classes' closed
paths with its arms raised during a random interval, and stands again, on a natural-looking 1/f-noise ground
(optionally panning) among other puppets that trace the same paths and balls that bounce. The class is the
SHAPE of the path, in any orientation and direction: one frame shows whether the actor acts, not what.

    motions.py    class paths, placement, the actor's track, bouncing
    figure.py     signed-distance puppets and balls, anti-aliased compositing
    backdrop.py   the periodic 1/f ground and the camera's pan (Fourier shift)
    scene.py      render_puppet_clip: one clip's frames and ground truth
    generate.py   generate_puppets and the CLI: `stanet data puppets --out DIR` (or `python -m training.puppets`)
"""

from training.puppets.config import PuppetsConfig
from training.puppets.generate import PUPPETS_CONFIG_FILE, generate_puppets, main, parse_args
from training.puppets.motions import CLASS_NAMES
from training.puppets.scene import PuppetClip, render_puppet_clip

__all__ = ["CLASS_NAMES", "PUPPETS_CONFIG_FILE", "PuppetClip", "PuppetsConfig", "generate_puppets", "main",
           "parse_args", "render_puppet_clip"]
