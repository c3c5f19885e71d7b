"""Motion for the trunk: each frame together with what moves in it, the camera's motion cancelled
(`model.trunk_input=motion`: the frame minus the clip's background; `difference`: the difference to the previous
frame).

Why: on a textured background the paper's per-frame trunk sees the texture at full contrast in every frame and
the actor as one more patch of it; the temporal attention starts near uniform, so the ConvLSTM's input is close
to the clip's mean frame, where a still texture stays sharp and a moving actor blurs. Subtracting what does not
move removes the texture. A panning camera moves every pixel, so the frames are first moved onto each other by
the camera's global translation, estimated per frame pair:

1. grey frames (channel mean), one integer shift per candidate in [-R, R]^2 pixels: the share of pixels
   where the current frame and the shifted previous frame disagree (a robust error: the camera moves most
   pixels, a moving object few), over the interior both cover;
2. the best candidate refined to sub-pixel by a parabola through its neighbours' errors, on each axis;
3. `motion`: every frame moved onto frame t (bilinear) and the per-pixel median of the samples that saw the
   pixel taken as frame t's background; `difference`: the previous frame moved onto frame t.

Everything is plain tensor arithmetic (slices, argmin, gather, topk, grid_sample), so it exports to ONNX opset
17 (ArgMin, GatherElements, TopK, GridSample) and runs the same in PyTorch, onnxruntime and OpenVINO; nothing
here is learned. A translation is the camera motion this removes; zoom, rotation and parallax leave a residual
at the edges of texture.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# A pixel agrees with a shift when the two frames differ there by well under this (normalized units, about 15
# grey levels): the error counts disagreeing pixels smoothly (Geman-McClure), so the camera's motion is the one
# most pixels agree with, not the one that best aligns a large moving object (squared error would be led by it).
AGREEMENT_SCALE = 0.25
# The camera is taken to move only when a shift makes at least this share of the frame more agree than holding
# still: on a flat frame the only thing a shift can align is a moving object, and aligning the actor would
# remove the very motion the trunk is to see. Used for choosing the integer shift only; the sub-pixel
# refinement reads the errors themselves.
CAMERA_EVIDENCE = 0.1
# A true minimum of the disagreement has neighbours that disagree on a tenth of the frame more (a textured pan
# reaches several tenths); below that the surface is too flat to place a sub-pixel minimum.
MIN_CURVATURE = 0.1


def shift_errors(current: torch.Tensor, previous: torch.Tensor, radius: int) -> torch.Tensor:
    """How badly `previous` shifted by every integer (dy, dx) in [-radius, radius]^2 explains `current`, over
    the interior both cover: (N, H, W) grey frames -> (N, 2r+1, 2r+1) errors indexed [dy + r, dx + r], each
    the mean over pixels of d^2 / (d^2 + s^2) (s = AGREEMENT_SCALE), the share of pixels that disagree. Shift
    (dy, dx) compares current[y, x] with previous[y - dy, x - dx]: content that moved by (dy, dx)."""
    N, H, W = current.shape
    r = radius
    if H <= 2 * r or W <= 2 * r:
        raise ValueError(f"frames of {H}x{W} pixels are too small for a motion search of +-{r} pixels")
    inner = current[:, r:H - r, r:W - r]  # (N, H-2r, W-2r)
    rows = []
    for dy in range(-r, r + 1):
        row = []
        for dx in range(-r, r + 1):
            moved = previous[:, r - dy:H - r - dy, r - dx:W - r - dx]  # (N, H-2r, W-2r)
            squared = (inner - moved).square()
            disagreement = (squared / (squared + AGREEMENT_SCALE ** 2)).mean(dim=(1, 2))  # (N,)
            row.append(disagreement)
        rows.append(torch.stack(row, dim=1))  # (N, 2r+1)
    return torch.stack(rows, dim=1)  # (N, 2r+1, 2r+1)


def parabola_offset(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Sub-pixel position of a minimum from three errors at -1, 0, +1 (the vertex of the parabola through
    them), clamped to [-0.5, 0.5]. The curvature is floored at MIN_CURVATURE: a shallow error surface (noise,
    no texture) says little about sub-pixel position, and dividing by a near-zero curvature would turn
    rounding differences between runtimes into visible shifts."""
    curvature = left - 2.0 * centre + right
    offset = 0.5 * (left - right) / curvature.clamp(min=MIN_CURVATURE)
    return offset.clamp(-0.5, 0.5)


def estimate_translation(current: torch.Tensor, previous: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, H, W) grey frames -> (N, 2) camera shift (dy, dx) in pixels from `previous` to `current`."""
    errors = shift_errors(current, previous, radius)  # (N, S, S), S = 2r+1
    N, S, _ = errors.shape
    flat = errors.reshape(N, S * S)  # (N, S*S)
    # Moving costs CAMERA_EVIDENCE, plus a hair per pixel of shift so that ties go to the smaller one.
    offsets = torch.arange(S, dtype=errors.dtype, device=errors.device) - radius  # (S,)
    distance = offsets[:, None].square() + offsets[None, :].square()  # (S, S)
    cost = (CAMERA_EVIDENCE * (distance > 0).to(errors.dtype) + 1e-6 * distance).reshape(1, S * S)
    best = (flat + cost).argmin(dim=1, keepdim=True)  # (N, 1)
    # Row and column without integer Div/Mod, which OpenVINO's CPU plugin may compute in floating point and
    # round (seen_median): best + 0.5 keeps the quotient off whole numbers, so the floor is exact anywhere.
    iy = ((best.to(errors.dtype) + 0.5) / S).floor().to(torch.int64)  # (N, 1)
    ix = best - iy * S  # (N, 1)

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        index = y.clamp(0, S - 1) * S + x.clamp(0, S - 1)  # (N, 1)
        return flat.gather(1, index)[:, 0]  # (N,)

    centre = at(iy, ix)
    oy = parabola_offset(at(iy - 1, ix), centre, at(iy + 1, ix))
    ox = parabola_offset(at(iy, ix - 1), centre, at(iy, ix + 1))
    # At the search's edge the clamped neighbour equals the centre: the parabola then leans inwards only.
    dy = (iy[:, 0] - radius).to(current.dtype) + oy
    dx = (ix[:, 0] - radius).to(current.dtype) + ox
    return torch.stack([dy, dx], dim=1)  # (N, 2)


def translate(frames: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) frames moved by (N, 2) shifts (dy, dx) pixels: out[y, x] = in[y - dy, x - dx], bilinear,
    border pixels repeated."""
    N, _, H, W = frames.shape
    # grid_sample's normalized coordinates (align_corners=False): pixel i's centre is (2i + 1) / size - 1 and
    # one pixel is 2 / size wide. (Built by hand: affine_grid has no ONNX form before opset 20.)
    xs = (2.0 * torch.arange(W, dtype=frames.dtype, device=frames.device) + 1.0) / W - 1.0  # (W,)
    ys = (2.0 * torch.arange(H, dtype=frames.dtype, device=frames.device) + 1.0) / H - 1.0  # (H,)
    gx = xs.view(1, 1, W) - (shift[:, 1] * (2.0 / W)).view(N, 1, 1)  # (N, 1, W)
    gy = ys.view(1, H, 1) - (shift[:, 0] * (2.0 / H)).view(N, 1, 1)  # (N, H, 1)
    grid = torch.stack([gx.expand(N, H, W), gy.expand(N, H, W)], dim=3)  # (N, H, W, 2): (x, y)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


# Stands in for samples a frame did not see (TopK sorts them last); far above any normalized pixel value.
UNSEEN = 1e4


def seen_median(aligned: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Per-pixel median over time of the samples that saw the pixel: (B, T, C, H, W) frames moved onto one
    frame, (B, T, 1, H, W) whether each sample lies inside its frame -> (B, C, H, W), the lower median of the
    seen samples. What stays where it is while objects pass, wherever an object covers a pixel in fewer than
    half of the frames that saw it. (TopK and GatherElements: ONNX has no median.)"""
    B, T, C, H, W = aligned.shape
    values = torch.where(seen, aligned, torch.full_like(aligned, UNSEEN))
    ordered = torch.topk(values, T, dim=1, largest=False).values  # (B, T, C, H, W), ascending
    count = seen.to(aligned.dtype).sum(dim=1, keepdim=True)  # (B, 1, 1, H, W), >= 1: the frame itself
    # floor((count - 1) / 2) in floating point, not an integer division: in this graph OpenVINO's CPU plugin
    # computed the exported integer Div off by one for an even count (every pixel of a T=16 model).
    index = ((count - 1.0) * 0.5).floor().to(torch.int64).expand(B, 1, C, H, W)  # (B, 1, C, H, W)
    return ordered.gather(1, index)[:, 0]  # (B, C, H, W)


def inside_frame(shift: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 2) shifts -> (N, 1, H, W): whether translate(frames, shift) reads pixel (y, x) from inside the frame
    (source y - dy within [-1/4, H - 3/4], likewise x) rather than from its repeated border. The quarter-pixel
    bounds are off the values shifts often take (whole pixels, and the refinement's clamp at half a pixel),
    so rounding in another runtime does not flip a sample in or out."""
    ys = torch.arange(height, dtype=shift.dtype, device=shift.device).view(1, height, 1) - shift[:, 0].view(-1, 1, 1)
    xs = torch.arange(width, dtype=shift.dtype, device=shift.device).view(1, 1, width) - shift[:, 1].view(-1, 1, 1)
    return ((ys >= -0.25) & (ys <= height - 0.75) & (xs >= -0.25) & (xs <= width - 0.75))[:, None]  # (N, 1, H, W)


class StabilizedDifference(nn.Module):
    """(B, T, 3, H, W) normalized clip -> (B, T, 6, H, W): each frame and what moves in it, the camera's
    translation cancelled (search +-`radius` pixels of the model's input per frame pair).

    `background=True` (trunk_input=motion): for each frame t, every frame of the clip is moved onto it by the
    accumulated camera shifts; the per-pixel median of the samples that saw the pixel (not the border a
    pan repeats) is frame t's background, and frame t minus it is what moves in frame t, where it is then.
    `background=False` (trunk_input=difference): the difference to the previous frame, which lights up where
    an object is now and where it was (its trailing strip lies outside its current box); the first frame
    takes the second's.
    (Three-frame differencing, the part of a frame that differs from both neighbours, keeps only the
    current position too but loses a uniform object's interior whenever it moves less than half its width
    between samples, so it is not offered.)"""

    def __init__(self, radius: int, background: bool = True):
        super().__init__()
        if radius < 0:
            raise ValueError(f"motion search radius must be >= 0 pixels, got {radius}")
        self.radius, self.background = radius, background

    @torch.no_grad()
    def camera_shifts(self, clip: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T-1, 2): the translation (dy, dx) from frame t to frame t+1."""
        B, T, C, H, W = clip.shape
        if self.radius == 0:
            return clip.new_zeros(B, T - 1, 2)
        grey = clip.mean(dim=2)  # (B, T, H, W)
        current = grey[:, 1:].reshape(B * (T - 1), H, W)  # (B*(T-1), H, W)
        previous = grey[:, :-1].reshape(B * (T - 1), H, W)
        return estimate_translation(current, previous, self.radius).reshape(B, T - 1, 2)  # (B, T-1, 2)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = clip.shape
        if T < 2:
            return torch.cat([clip, torch.zeros_like(clip)], dim=2)  # (B, 1, 2C, H, W): no motion to see
        shifts = self.camera_shifts(clip)  # (B, T-1, 2), frame t -> t+1
        if not self.background:
            earlier = clip[:, :-1].reshape(B * (T - 1), C, H, W)  # (B*(T-1), C, H, W)
            aligned = translate(earlier, shifts.reshape(B * (T - 1), 2)).reshape(B, T - 1, C, H, W)
            difference = clip[:, 1:] - aligned  # (B, T-1, C, H, W)
            difference = torch.cat([difference[:, :1], difference], dim=1)  # (B, T, C, H, W)
            return torch.cat([clip, difference], dim=2)  # (B, T, 2C, H, W)
        # offsets[:, u]: where frame 0's content is in frame u, the shifts accumulated up to u.
        offsets = torch.cat([shifts.new_zeros(B, 1, 2), torch.cumsum(shifts, dim=1)], dim=1)  # (B, T, 2)
        frames = clip.reshape(B * T, C, H, W)  # (B*T, C, H, W)
        moving = []
        for t in range(T):
            # Frame u moved onto frame t: frame t's content lies at offsets[u] - offsets[t] in frame u.
            onto_t = offsets[:, t:t + 1] - offsets  # (B, T, 2)
            aligned = translate(frames, onto_t.reshape(B * T, 2)).reshape(B, T, C, H, W)  # (B, T, C, H, W)
            seen = inside_frame(onto_t.reshape(B * T, 2), H, W).reshape(B, T, 1, H, W)  # (B, T, 1, H, W)
            moving.append(clip[:, t] - seen_median(aligned, seen))  # (B, C, H, W)
        return torch.cat([clip, torch.stack(moving, dim=1)], dim=2)  # (B, T, 2C, H, W)
