#!/usr/bin/env python3
"""Writes tests/data/mds_reference.csv: 40 fixed points in 4-D and their classical MDS in 2-D,
computed with NumPy (Debian's python3-numpy), as the reference for test_embedding.cpp.

Classical (Torgerson) MDS: B = -1/2 J D J with D the squared distances and J the centring matrix;
coordinates = top eigenvectors of B times the square roots of their eigenvalues. Each eigenvector's
sign is fixed so that its largest-magnitude component is positive, as xasmap does.

Usage: mds_reference.py [OUT]   (default: the file beside this script's ../data/)
"""
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "data" / "mds_reference.csv"
    rng = np.random.default_rng(20181101)
    x = rng.normal(size=(40, 4)) * np.array([3.0, 2.0, 1.0, 0.5])
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    n = len(x)
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ d2 @ j
    values, vectors = np.linalg.eigh(b)
    order = np.argsort(values)[::-1][:2]
    coords = []
    for k in order:
        v = vectors[:, k]
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        coords.append(v * np.sqrt(values[k]))
    coords = np.column_stack(coords)
    with open(out, "w") as f:
        f.write("# classical MDS reference, written by tests/core/mds_reference.py with NumPy\n")
        f.write("x0,x1,x2,x3,mds0,mds1\n")
        for row, c in zip(x, coords):
            f.write(",".join(f"{v:.17g}" for v in (*row, *c)) + "\n")


if __name__ == "__main__":
    main()
