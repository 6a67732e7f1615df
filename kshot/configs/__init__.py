"""Shipped training presets (TOML): each method's paper settings (`paper-*.toml`) and the
settings of every reported BENCHMARKS row (named after its checkpoint). Data, not code:
`kshot train --config NAME` reads kshot/configs/NAME.toml."""
