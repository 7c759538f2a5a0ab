#!/usr/bin/env python3
"""Packs the contact-nets cube tosses into one HDF5 file for the box-toss study.

Input: the folder of 570 CSV files `0.csv` ... `569.csv` that Dojo.jl ships in
`examples/system_identification/data/experiment/tosses_csv/` (MIT; the tosses were recorded
by DAIRLab for ContactNets, BSD-3-Clause). Each row is one frame at 148 Hz: position (3,
metres x 20), orientation quaternion (4, scalar first), then velocity and angular velocity
columns and zero padding, which the study does not use (it differences the poses, as Dojo
does).

Output: `poses` [frames, 7] float64 (x, y, z, qw, qx, qy, qz) with every toss's frames one
after the other, `offsets` [tosses + 1] int64 (toss k is rows offsets[k]..offsets[k+1]),
gzip-compressed, with the units and provenance as attributes.

Usage: python3 scripts/contact-nets-tosses.py TOSSES_CSV_DIR data/contact-nets/tosses.h5
"""
import os
import sys

import h5py
import numpy as np


def main(src, out):
    tosses = []
    k = 0
    while os.path.exists(os.path.join(src, f"{k}.csv")):
        rows = np.loadtxt(os.path.join(src, f"{k}.csv"), delimiter=",", ndmin=2)
        tosses.append(rows[:, :7])
        k += 1
    if not tosses:
        sys.exit(f"no 0.csv in {src}")
    offsets = np.cumsum([0] + [len(t) for t in tosses]).astype(np.int64)
    tmp = out + ".partial"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("poses", data=np.concatenate(tosses), compression="gzip",
                         compression_opts=9, shuffle=True, chunks=(4096, 7))
        f.create_dataset("offsets", data=offsets)
        f.attrs["rate_hz"] = 148.0
        f.attrs["length_scale"] = 20.0
        f.attrs["columns"] = "x, y, z (metres x 20), qw, qx, qy, qz (body to world)"
        f.attrs["source"] = ("DAIRLab ContactNets cube tosses (BSD-3-Clause), as shipped in "
                             "Dojo.jl examples/system_identification/data/experiment/"
                             "tosses_csv (MIT)")
    os.replace(tmp, out)
    print(f"{len(tosses)} tosses, {offsets[-1]} frames -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
