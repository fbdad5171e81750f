"""VITAL and a Fourier baseline for one class neuron of a torchvision ResNet18, from Python alone
(no Snakemake, no config file): `vitalstudy.visualize` runs the workflow's generation code.

    python examples/visualize_resnet18.py --weights resnet18-f37072fd.pth --steps 300
    python examples/visualize_resnet18.py --untrained --steps 5 --size 64   # plumbing check only

Without --weights the ImageNet weights come through torchvision's weights API and its cache
($TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth); offline, the error says where to put the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import vitalstudy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="a local resnet18 state dict (default: torchvision's IMAGENET1K_V1)")
    parser.add_argument("--untrained", action="store_true",
                        help="random weights: checks that everything runs, the images mean nothing")
    parser.add_argument("--target", default="n07920052", help="WordNet id, class index or <layer>_c<channel>")
    parser.add_argument("--references", nargs="*", default=None,
                        help="photos of the class (default: scikit-image's coffee cup, an espresso)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=224, help="image side in px")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", type=Path, default=Path("results/example-resnet18"))
    args = parser.parse_args()

    references = args.references
    if not references:
        from PIL import Image
        from skimage import data

        references = [Image.fromarray(data.coffee())]
    if args.untrained:
        import torchvision

        model, weights = torchvision.models.resnet18(), None  # an nn.Module as it is
    else:
        model, weights = "resnet18", args.weights  # by name: vitalstudy loads the weights
    target = int(args.target) if args.target.isdigit() else args.target
    args.out.mkdir(parents=True, exist_ok=True)
    for method in ("vital", "fourier"):
        fv = vitalstudy.visualize(model, target, method=method, references=references, steps=args.steps,
                                  device=args.device, name="resnet18", weights=weights,
                                  declaration={"input_size": args.size}, log=print)
        fv.save(args.out / f"{method}-{args.target}")
        compute = fv.record["compute"]
        print(f"{method}: {args.out / f'{method}-{args.target}.png'} ({compute['steps']} steps, "
              f"{compute['forward_passes']} forward passes, {compute['seconds']:.1f} s)")


if __name__ == "__main__":
    from vitalstudy.errors import VitalStudyError

    try:
        main()
    except VitalStudyError as exc:  # a missing weight file, a bad target: one line, no traceback
        raise SystemExit(f"visualize_resnet18: error: {exc}") from None
