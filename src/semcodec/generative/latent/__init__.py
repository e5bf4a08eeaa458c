"""Latent-space pieces shared by the PerCo and ResULIC profiles.

- :mod:`.taef2`: the tiny FLUX.2 autoencoder (image ↔ 32×H/8×W/8 latent), built from its state dicts.
- :mod:`.vae`: one interface over taef2 and diffusers VAEs (AutoencoderKL / AutoencoderTiny).
- :mod:`.codec`: hyperprior latent codec (CompressAI) coding a VAE latent into LATENT streams.
- :mod:`.vq`: PerCo's hyper-encoder + vector quantiser with uniform index coding.
"""
