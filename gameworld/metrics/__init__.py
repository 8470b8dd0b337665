"""Evaluation metrics shared by `eval.score`, training validation and front ends.

- `image`: PSNR, SSIM, sharpness, mean colour, feature cosine (no model needed)
- `lpips`, `fvd`: perceptual distance and Frechet video distance from user-provided local weights
- `encoder`: a user's image encoder (TorchScript) for the feature cosines
- `controls`: key-group and camera-direction labels and accuracies (GameWorld Score's definitions)
- `protocol`: the GameWorld Score clip protocol (quick and full) on the voxel game or given starts
- `evaluate`, `report`: running the protocol, its results.json / Markdown / plots / videos
- `compare`: several reports of each setting as means, spreads and paired differences
"""
