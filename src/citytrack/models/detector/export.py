"""ONNX export of the detector: `python -m citytrack.models.detector.export ckpt=PATH out=FILE.onnx [img_size=640]`.

`out=FILE.pt` instead writes a small fp16 inference checkpoint (`save_inference_checkpoint`:
the EMA weights when the run kept them, no optimizer state) that `load_detector` reads.

The graph takes RGB `[0, 1]` floats `(B, 3, S, S)` (dynamic batch) and returns `(B, A, 5 + C)`:
`x1, y1, x2, y2` in input pixels, objectness and class probabilities (sigmoids applied), so a
runtime needs only `score = obj * cls` and NMS. NMS stays outside the graph: ONNX's
NonMaxSuppression differs between runtimes, `torchvision.ops.batched_nms` or the runtime's
own NMS is applied by the caller.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from citytrack.models.detector.net import YoloxNet
from citytrack.utils.boxes import cxcywh_to_xyxy
from citytrack.utils.io import atomic_path


class ExportWrapper(nn.Module):
    """Net + box conversion + sigmoids, the deployable graph."""

    def __init__(self, net: YoloxNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net(images)
        return torch.cat([cxcywh_to_xyxy(out[..., :4]), out[..., 4:].sigmoid()], -1)


def export_onnx(net: YoloxNet, out: str | Path, img_size: int = 640, opset: int = 17, batch: int = 1) -> Path:
    """Write `net` as ONNX (dynamic batch) to `out`, atomically; returns the path."""
    out = Path(out)
    wrapper = ExportWrapper(net).eval().cpu()
    dummy = torch.zeros(batch, 3, img_size, img_size)
    with atomic_path(out) as tmp, torch.no_grad():
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(tmp),
            input_names=["images"],
            output_names=["outputs"],
            dynamic_axes={"images": {0: "batch"}, "outputs": {0: "batch"}},
            opset_version=opset,
            dynamo=False,  # TorchScript exporter: no onnxscript dependency, stable for conv nets
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: `ckpt=PATH out=FILE.onnx [img_size=N] [opset=N]` or `ckpt=PATH out=FILE.pt`."""
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    if "ckpt" not in args or "out" not in args:
        print("usage: python -m citytrack.models.detector.export ckpt=PATH out=FILE.onnx|FILE.pt [img_size=640] [opset=17]")
        return 2
    from citytrack.models.detector.module import load_detector, save_inference_checkpoint

    module = load_detector(args["ckpt"])
    if Path(args["out"]).suffix in (".pt", ".ckpt"):
        path = save_inference_checkpoint(module, args["out"])
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, fp16 inference weights)")
        return 0
    size = int(args.get("img_size", module.hparams.img_size))
    path = export_onnx(module.eval_net, args["out"], size, int(args.get("opset", 17)))
    print(f"wrote {path} (input 1x3x{size}x{size}, dynamic batch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
