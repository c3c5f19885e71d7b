"""`python -m training.synth --out DIR`: the same as `stanet data synth --out DIR`."""

from training.synth.generate import main

main()
