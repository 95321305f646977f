"""Judges of generated images: identity consistency under a Re-ID model, prompt fidelity and
diversity read by attribute and view classifiers. They sit above the generator, the filter and
the Re-ID models they use; the metrics below them never import them."""
