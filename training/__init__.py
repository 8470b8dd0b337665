"""Training jobs (`python -m training.<job>`) and the machinery they share.

    training/config.py           YAML recipes -> dataclasses, `key=value` overrides from the command line
    training/distributed.py      one process, one GPU, or many under torchrun (DDP / FSDP)
    training/checkpoint.py       atomic checkpoints (safetensors + JSON), keep the last K, exact resume
    training/data.py             resumable batches from a dataset's own (seeded, per-rank) order
    training/trainer.py          the one training loop: AdamW, warmup + cosine, clipping, EMA, logs
    training/rollouts.py         held-out next-frame loss and rollout PSNR (with sample mp4s)
    training/train.py            job: the world model (flow matching)      -> a model directory
    training/train_tokenizer.py  job: the frame autoencoder (or a decoder) -> a tokenizer directory
"""
