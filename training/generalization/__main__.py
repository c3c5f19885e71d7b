"""`python -m training.generalization ...`: see training.generalization.cli."""

from training.generalization.cli import main

raise SystemExit(main())
