"""`python -m training.puppets --out DIR`: the same as `stanet data puppets --out DIR`."""

from training.puppets.generate import main

raise SystemExit(main())
