"""Training jobs (`python -m training.<job>`) and the machinery they share.

    training/config.py           YAML recipes -> dataclasses, `key=value` overrides from the command line
    training/job.py              the command line of every Trainer job: recipe, processes, one-line errors
    training/distributed.py      one process, one GPU, or many under torchrun (DDP / FSDP)
    training/checkpoint.py       atomic checkpoints (safetensors + JSON), keep the last K, exact resume
    training/data.py             resumable batches from a dataset's own (seeded, per-rank) order
    training/trainer.py          the one training loop: AdamW, warmup + cosine, clipping, EMA, logs
    training/rollouts.py         held-out next-frame loss and rollout PSNR (with sample mp4s)
    training/image_losses.py     the tokenizer's reconstruction losses (L1, SSIM, gradients, patch GAN)
    training/train.py            job: the world model (flow matching)      -> a model directory
    training/train_tokenizer.py  job: the frame autoencoder (or a decoder) -> a tokenizer directory
    training/distill.py          job: consistency distillation to a few-step student
    training/fit_motion_prior.py job: the motion prior, fitted on episodes -> motion_prior.json
    training/encode_starts.py    job: the motion prior's start of every shard row -> start shards
    training/finetune_starts.py  job: a world model trained on those starts, as the engine samples
    training/train_idm.py        job: the inverse dynamics model that scores controllability
    training/export.py           a model directory copied to where it ships, in float16
"""
