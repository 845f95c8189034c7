"""Writes reconstructions in the layouts of PyNX (a save_obj_cxi result with a (1, nz, ny, nx)
object, and a pynx-cdi-analysis modes file), cohere (image.npy + support.npy) and bcdi (.npz
with `obj`, and with `amp`/`phase`/`voxel_sizes` plus text members), for
Tests/FormatsTests/PeerResultsTests.swift. Layouts as cited in Sources/Formats/PeerResults.swift.

Run: python3 make_peer_results.py OUTDIR   (numpy, h5py).

The object is obj.flat[i] = (1 + i % 7) * exp(0.01j * i) over a (6, 8, 10) box; the support
is 1 where i % 3 != 0; mode k of a stack is obj * 0.5**k."""
import os
import sys

import h5py
import numpy as np

SHAPE = (6, 8, 10)


def obj():
    i = np.arange(np.prod(SHAPE))
    return ((1 + i % 7) * np.exp(0.01j * i)).astype(np.complex64).reshape(SHAPE)


def support():
    i = np.arange(np.prod(SHAPE))
    return (i % 3 != 0).astype(np.int8).reshape(SHAPE)


def pynx(out):
    with h5py.File(os.path.join(out, "pynx-result.cxi"), "w") as f:
        f.attrs["creator"] = "PyNX"
        f.create_dataset("cxi_version", data=150)
        e = f.create_group("entry_1")
        f["entry_last"] = h5py.SoftLink("/entry_1")
        e.create_dataset("program_name", data="PyNX 2022.1")
        im = e.create_group("image_1")
        im.create_dataset("data", data=obj()[np.newaxis], chunks=True, shuffle=True, compression="gzip")
        im.create_dataset("mask", data=support(), chunks=True, shuffle=True, compression="gzip")
        im["support"] = h5py.SoftLink("/entry_1/image_1/mask")
        im.create_dataset("image_size", data=np.array(SHAPE) * 5e-9)   # 5 nm voxels
        ins = im.create_group("instrument_1")
        ins.create_dataset("source_1/energy", data=9000 * 1.602176634e-19)
        ins.create_dataset("detector_1/distance", data=1.2)
        ins.create_dataset("detector_1/x_pixel_size", data=55e-6)
        e.create_group("data_1")["data"] = h5py.SoftLink("/entry_1/image_1/data")
        p = im.create_group("process_1")
        p.create_dataset("program", data="PyNX")
        p.create_dataset("version", data="2022.1")
        c = p.create_group("configuration")
        c.create_dataset("nb_raar", data=600)
        c.create_dataset("support_threshold", data=0.25)
        c.create_dataset("algorithm", data="ER**100,RAAR**600")
        p.create_dataset("results/llk_poisson", data=12.5)
    with h5py.File(os.path.join(out, "pynx-modes.h5"), "w") as f:
        e = f.create_group("entry_1")
        im = e.create_group("image_1")
        im.create_dataset("data", data=np.stack([obj() * 0.5 ** k for k in range(3)]))
        im.create_group("process_1").create_dataset("program", data="PyNX")
        e.create_group("data_1")["data"] = h5py.SoftLink("/entry_1/image_1/data")
        e.create_dataset("data_2/data", data=[0.9, 0.08, 0.02])


def cohere(out):
    d = os.path.join(out, "cohere", "results_phasing")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "image.npy"), obj().astype(np.complex128))
    np.save(os.path.join(d, "support.npy"), support().astype(np.float32))
    np.save(os.path.join(d, "errors.npy"), np.array([0.5, 0.2, 0.1]))


def bcdi(out):
    np.savez_compressed(os.path.join(out, "S12_avg_obj_prtf.npz"), obj=obj())
    o = obj()
    np.savez_compressed(os.path.join(out, "S12_amp-disp-strain.npz"), amp=np.abs(o), phase=np.angle(o),
                        bulk=support(), strain=np.zeros(SHAPE), voxel_sizes=np.array([4.0, 5.0, 6.0]),
                        q_bragg=np.array([0.0, 2.7, 0.0]), params=str({"scan": 12}))
    np.savez_compressed(os.path.join(out, "S12_support.npz"), obj=support().astype(float))


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for make in (pynx, cohere, bcdi):
        make(out)
    print("ok")
