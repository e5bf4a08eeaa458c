"""ResULIC (Ke et al., ICML 2025): latent codec + semantic residual text + compression-aware diffusion."""
