"""Zero-shot and text-prior Prototypical Networks (Snell et al. 2017, section 2.7): class prototypes
from text (class names and descriptions), not from images."""
