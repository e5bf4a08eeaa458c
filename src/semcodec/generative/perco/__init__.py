"""PerCo (Careil et al., ICLR 2024): VQ hyper-latent + caption conditioning of a latent diffusion UNet."""
