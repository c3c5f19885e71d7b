"""Training recipes: data generation, training and evaluation (apart from the `stanet` library)."""
