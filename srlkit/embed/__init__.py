"""`srlkit embed`: precompute expert-step vectors (`run.embed_dataset`); where they live (`store`)."""
