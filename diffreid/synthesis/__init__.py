"""Synthesis stages: captioning (LPE part 1) comes first; fine-tuning and sampling build on its captions."""
