"""BD-rate of published, fully trained learned codecs against AV1 on Kodak (issue 17's ceiling question).

Would the `lic` architecture (a mean-scale hyperprior) reach the issue's targets if it were trained
to convergence? The curves below are CompressAI's published Kodak results (repository
InterDigitalInc/CompressAI, files results/image/kodak/{av1, compressai-mbt2018-mean_mse_cuda,
compressai-mbt2018-mean_ms-ssim_cpu, compressai-cheng2020-attn_mse_cuda}.json), lowest-rate points
only: models trained on GPUs for days at N = 128 / M = 192 (ours: N = 64 / M = 128, ~1 CPU hour),
coded at full resolution over 0.1–0.35 bpp (ours: 0.01–0.1 bpp at ×2/×4 downscale), AV1 with
CompressAI's encoder settings (not our `avif` profile). So this bounds the architecture, it does not
predict our Kodak BD-rates. Usage: python scripts/published_curves_bd.py
"""

from __future__ import annotations

from semcodec.eval.bdrate import bd_rate

AV1 = {"bpp": [0.055692, 0.109981, 0.169955, 0.245602, 0.352358],
       "psnr": [25.5607, 27.5624, 29.0247, 30.4417, 31.9874],
       "ms-ssim": [0.846568, 0.901113, 0.929252, 0.949041, 0.964285]}
CURVES = {
    "mbt2018-mean, MSE-trained (lic's family)": {
        "bpp": [0.123922, 0.197981, 0.307244], "psnr": [27.6995, 29.3588, 31.1289],
        "ms-ssim": [0.917841, 0.943057, 0.961485]},
    "mbt2018-mean, MS-SSIM-trained (lic-msssim's family)": {
        "bpp": [0.101715, 0.161601, 0.241896, 0.342302], "psnr": [25.4407, 26.5679, 27.5660, 28.5027],
        "ms-ssim": [0.933812, 0.957024, 0.971747, 0.980767]},
    "cheng2020-attn, MSE-trained (context model + attention)": {
        "bpp": [0.115577, 0.174479, 0.269033], "psnr": [28.4310, 29.7659, 31.3213],
        "ms-ssim": [0.923922, 0.945346, 0.963469]},
}


def main() -> None:
    print("| published model (CompressAI, Kodak) | BD-rate PSNR vs AV1 | BD-rate MS-SSIM vs AV1 |")
    print("|---|---|---|")
    for name, c in CURVES.items():
        cells = [bd_rate(AV1["bpp"], AV1[m], c["bpp"], c[m]).value for m in ("psnr", "ms-ssim")]
        print(f"| {name} | " + " | ".join(f"{v:+.1f} %" for v in cells) + " |")


if __name__ == "__main__":
    main()
