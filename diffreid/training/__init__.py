"""What the trainers share (Re-ID training, cluster contrast, generator fine-tuning and base
training): run folders that resume, checkpoints, curves, and reading weight files safely."""
