"""Faithfulness of the explanations (`stanet evaluate --faithfulness`): does the answer depend on what the maps
rank first? Deletion/insertion curves (curves.py, spatial.py, temporal.py) for the model's maps and the
baselines (maps.py), the cascading randomization test (randomization.py), the same numbers through the
exported graphs (served.py), figures (figures.py); docs/model.md, "Faithfulness"."""
