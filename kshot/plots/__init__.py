"""Pictures of what a model learned (need the `plot` extra: matplotlib, scikit-learn)."""
