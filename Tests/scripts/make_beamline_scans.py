"""Writes small scan files in the layouts of ESRF ID01 (BLISS), PETRA III P10 (Eiger master
file with external links and bitshuffle/LZ4 data, plus .fio), Diamond I16 (GDA entry1 and the
newer entry layout), a generic NeXus file (NXdetector + NXtransformations) and SOLEIL SIXS,
for Tests/PreparationTests/BeamlineReaderTests.swift. Each layout follows the peer loaders
cited in Sources/Preparation/{ID01,P10,NeXusScan,SIXS}.swift.

Run: python3 make_beamline_scans.py OUTDIR [MAKER ...]   (MAKER: id01, i16_bragg, …; default all; needs numpy, h5py and, for P10, the
bitshuffle HDF5 plugin, filter 32008: Debian's `bitshuffle` package).

Every frame stack holds frames[k, r, c] = (flat index * 7 + offset) % 1009 as uint32
(flat index over the whole stack), so the reader test can rebuild the values exactly."""
import os
import sys

import h5py
import numpy as np

N, ROWS, COLS = 8, 32, 48


def frames(offset, n=N):
    i = np.arange(n * ROWS * COLS, dtype=np.int64)
    return ((i * 7 + offset) % 1009).astype(np.uint32).reshape(n, ROWS, COLS)


def nx(group, cls):
    group.attrs["NX_class"] = cls
    return group


def with_units(group, name, value, units):
    d = group.create_dataset(name, data=value)
    d.attrs["units"] = units
    return d


def id01(out):
    # BLISS: {sample}_{scan}.1/measurement/<detector>, instrument/positioners/<motor>
    with h5py.File(os.path.join(out, "id01.h5"), "w") as f:
        for scan, offset in ((3, 1), (4, 2)):
            g = f.create_group(f"sampleA_{scan}.1")
            m = g.create_group("measurement")
            m.create_dataset("mpx1x4", data=frames(offset), chunks=(1, ROWS, COLS), compression="gzip")
            eta = 17.0 + 0.01 * np.arange(N)
            m.create_dataset("eta", data=eta)
            m.create_dataset("imon", data=1000.0 + 3.0 * np.arange(N))
            p = g.create_group("instrument/positioners")
            p.create_dataset("eta", data=eta)
            for name, v in (("mu", 0.0), ("phi", 1.5), ("nu", 2.25), ("delta", 35.5), ("mononrj", 8.5)):
                p.create_dataset(name, data=v)
            d = g.create_group("instrument/mpx1x4")
            for name, v in (("distance", 0.83), ("x_pixel_size", 55e-6), ("y_pixel_size", 55e-6),
                            ("beam_center_x", 270.5), ("beam_center_y", 120.25), ("dim_i", 516), ("dim_j", 516)):
                d.create_dataset(name, data=v)
        # a scan without detector frames (a counting scan), as BLISS files hold many
        g = f.create_group("sampleA_5.1")
        g.create_group("measurement").create_dataset("imon", data=[1.0])
        g.create_group("instrument/positioners").create_dataset("eta", data=17.0)


def p10(out):
    # {sample}_{scan:05d}/{sample}_{scan:05d}.fio and .../e4m/{sample}_{scan:05d}_master.h5
    scan = os.path.join(out, "p10", "align_00012")
    e4m = os.path.join(scan, "e4m")
    os.makedirs(e4m, exist_ok=True)
    data = frames(3)
    blocks = ((0, 5), (5, 8))   # the Eiger writes frames in blocks of data files
    for k, (a, b) in enumerate(blocks, start=1):
        with h5py.File(os.path.join(e4m, f"align_00012_data_{k:06d}.h5"), "w") as f:
            # bitshuffle + LZ4: filter 32008, options (block size 0 = automatic, 2 = LZ4)
            f.create_dataset("entry/data/data", data=data[a:b], chunks=(1, ROWS, COLS),
                             compression=32008, compression_opts=(0, 2))
        with h5py.File(os.path.join(e4m, f"align_00012_data_{k:06d}.h5"), "r") as f:
            assert "32008" in f["entry/data/data"]._filters, "bitshuffle filter not applied"
    with h5py.File(os.path.join(e4m, "align_00012_master.h5"), "w") as f:
        for k in range(1, len(blocks) + 1):
            f[f"entry/data/data_{k:06d}"] = h5py.ExternalLink(f"align_00012_data_{k:06d}.h5", "/entry/data/data")
        d = f.create_group("entry/instrument/detector")
        with_units(d, "x_pixel_size", 75e-6, "m")
        with_units(d, "y_pixel_size", 75e-6, "m")
        with_units(d, "detector_distance", 1.83, "m")
        d.create_dataset("beam_center_x", data=1040.5)
        d.create_dataset("beam_center_y", data=1100.0)
        with_units(d, "count_time", 0.5, "s")
        d.create_dataset("detectorSpecific/x_pixels_in_detector", data=2070)
        d.create_dataset("detectorSpecific/y_pixels_in_detector", data=2167)
        with_units(f.create_group("entry/instrument/beam"), "incident_wavelength", 1.4586, "angstrom")
    om = 19.8 + 0.05 * np.arange(N)
    ipetra = 100.0 - 0.25 * np.arange(N)
    lines = ["!", "! Comments", "!", "%c", "dscan om -0.2 0.15 7 0.5",
             "user p10user Acquisition started at Thu Dec 3 10:00:00 2026",
             "!", "! Parameter", "!", "%p",
             "om = 20.0", "mu = 0.5", "chi = 90.0", "phi = -3.5", "gam = 1.25", "del = 40.5",
             "fmbenergy = 8500.0", "!", "! Data", "!", "%d",
             " Col 1 om DOUBLE", " Col 2 ipetra DOUBLE", " Col 3 e4m_roi1 DOUBLE"]
    for k in range(N):
        lines.append(f" {om[k]:.6f} {ipetra[k]:.4f} {1000 + k}")
    with open(os.path.join(scan, "align_00012.fio"), "w") as f:
        f.write("\n".join(lines) + "\n")


def i16(out):
    # GDA classic: entry1/instrument/excalibur/data, entry1/before_scan/diffractometer_sample
    with h5py.File(os.path.join(out, "i16_classic.nxs"), "w") as f:
        e = nx(f.create_group("entry1"), "NXentry")
        det = nx(e.create_group("instrument/excalibur"), "NXdetector")
        det.create_dataset("data", data=frames(4), chunks=(1, ROWS, COLS))
        ds = e.create_group("before_scan/diffractometer_sample")
        for name, v in (("mu", 0.0), ("eta", 20.0), ("chi", 90.0), ("phi", 0.0), ("delta", 40.0), ("gam", 5.0)):
            ds.create_dataset(name, data=v)
        with_units(e.create_group("before_scan/mono"), "en", 9.0, "keV")
        m = e.create_group("measurement")
        m.create_dataset("eta", data=19.9 + 0.025 * np.arange(N))
        m.create_dataset("ic1monitor", data=5e4 + 10.0 * np.arange(N))
    # I16's newer NeXus: entry/instrument/<NXdetector>, diffractometer_sample, measurement
    with h5py.File(os.path.join(out, "i16.nxs"), "w") as f:
        e = nx(f.create_group("entry"), "NXentry")
        inst = nx(e.create_group("instrument"), "NXinstrument")
        inst.create_dataset("name", data="i16")
        det = nx(inst.create_group("merlin"), "NXdetector")
        det.create_dataset("data", data=frames(5), chunks=(1, ROWS, COLS))
        with_units(det, "transformations/origin_offset", 1200.0, "mm")
        with_units(det, "module/fast_pixel_direction", 0.055, "mm")
        with_units(det, "module/slow_pixel_direction", 0.055, "mm")
        ds = inst.create_group("diffractometer_sample")
        for name, v in (("mu", 0.0), ("eta", 30.0), ("chi", 88.0), ("phi", 10.0), ("delta", 60.0), ("gam", 0.0)):
            ds.create_dataset(name, data=v)
        with_units(e.create_group("sample/beam"), "incident_energy", 8.05, "keV")
        m = e.create_group("measurement")
        m.create_dataset("eta", data=29.9 + 0.02 * np.arange(N))
        m.create_dataset("ic1monitor", data=2e4 + np.arange(N))


def i16_bragg(out):
    # I16's newer NeXus layout (as i16.nxs) holding a Bragg peak: a Gaussian blob of
    # 2000 counts on a background of 1 at frame 6, row 15, column 29 of 12 frames of 32×48;
    # every circle off zero; the direct beam at row 10, column 20 (entry/instrument/
    # merlin_centre_i/j); the module's pixel axes as NeXus vectors (slow_pixel_direction
    # down, fast_pixel_direction towards −x) beside their lengths.
    n = 12
    z, r, c = np.meshgrid(np.arange(n), np.arange(ROWS), np.arange(COLS), indexing="ij")
    blob = 1 + 2000 * np.exp(-((z - 6.0) ** 2 / 2.0 + (r - 15.0) ** 2 / 4.5 + (c - 29.0) ** 2 / 4.5))
    with h5py.File(os.path.join(out, "i16_bragg.nxs"), "w") as f:
        e = nx(f.create_group("entry"), "NXentry")
        inst = nx(e.create_group("instrument"), "NXinstrument")
        inst.create_dataset("name", data="i16")
        det = nx(inst.create_group("merlin"), "NXdetector")
        det.create_dataset("data", data=np.round(blob).astype(np.uint32), chunks=(1, ROWS, COLS))
        with_units(det, "transformations/origin_offset", 1500.0, "mm")
        with_units(det, "module/fast_pixel_direction", 0.055, "mm").attrs["vector"] = [-1.0, 0.0, 0.0]
        with_units(det, "module/slow_pixel_direction", 0.055, "mm").attrs["vector"] = [0.0, -1.0, 0.0]
        inst.create_dataset("merlin_centre_i", data=10.0)
        inst.create_dataset("merlin_centre_j", data=20.0)
        ds = inst.create_group("diffractometer_sample")
        for name, v in (("mu", 1.5), ("eta", 17.2), ("chi", 84.0), ("phi", 11.0), ("delta", 34.6), ("gam", 3.8)):
            ds.create_dataset(name, data=v)
        with_units(e.create_group("sample/beam"), "incident_energy", 9.3, "keV")
        m = e.create_group("measurement")
        m.create_dataset("eta", data=17.17 + 0.005 * np.arange(n))
        m.create_dataset("ic1monitor", data=1e5 + np.zeros(n))


def nexus(out):
    # NXentry/NXinstrument/NXdetector + NXtransformations chains from depends_on
    with h5py.File(os.path.join(out, "generic.nxs"), "w") as f:
        e = nx(f.create_group("entry"), "NXentry")
        inst = nx(e.create_group("instrument"), "NXinstrument")
        det = nx(inst.create_group("detector"), "NXdetector")
        det.create_dataset("data", data=frames(6), chunks=(1, ROWS, COLS))
        with_units(det, "distance", 950.0, "mm")
        with_units(det, "x_pixel_size", 75.0, "um")
        with_units(det, "y_pixel_size", 172.0, "um")
        with_units(det, "beam_center_x", 10.5, "pixel")
        with_units(det, "beam_center_y", 20.0, "pixel")
        det.create_dataset("depends_on", data="/entry/instrument/detector/transformations/two_theta")
        t = nx(det.create_group("transformations"), "NXtransformations")
        tt = with_units(t, "two_theta", 33.0, "deg")
        tt.attrs["transformation_type"] = "rotation"
        tt.attrs["vector"] = [0.0, 1.0, 0.0]
        tt.attrs["depends_on"] = "."
        beam = nx(inst.create_group("beam"), "NXbeam")
        with_units(beam, "incident_wavelength", 1.0, "angstrom")
        s = nx(e.create_group("sample"), "NXsample")
        s.create_dataset("depends_on", data="/entry/sample/transformations/omega")
        st = nx(s.create_group("transformations"), "NXtransformations")
        om = with_units(st, "omega", 16.5 + 0.004 * np.arange(N), "deg")
        om.attrs["transformation_type"] = "rotation"
        om.attrs["vector"] = [0.0, 1.0, 0.0]
        om.attrs["depends_on"] = "phi"           # relative: beside omega
        ph = with_units(st, "phi", 0.1, "rad")
        ph.attrs["transformation_type"] = "rotation"
        ph.attrs["vector"] = [0.0, 0.0, 1.0]
        ph.attrs["depends_on"] = "."
        mon = nx(e.create_group("monitor"), "NXmonitor")
        mon.create_dataset("data", data=300.0 + np.arange(N))


def sixs(out):
    # SOLEIL SIXS 2022: com/scan_data/<3D frames>, actuator_1_1; com/SIXS/...dif-group.1/*/position
    with h5py.File(os.path.join(out, "sixs.nxs"), "w") as f:
        sd = f.create_group("com/scan_data")
        sd.create_dataset("test_image", data=frames(7), chunks=(1, ROWS, COLS))
        sd.create_dataset("actuator_1_1", data=12.0 + 0.005 * np.arange(N))
        g = f.create_group("com/SIXS/i14-c-cx1-ex-med-v-dif-group.1")
        for name, v in (("mu", 12.0), ("omega", 3.0), ("gamma", 0.5), ("delta", 25.0)):
            g.create_dataset(f"i14-c-cx1-ex-dif-{name}/position", data=[v])
        f.create_dataset("com/SIXS/i14-c-c02-op-mono/energy", data=[8.5])


def unknown(out):
    with h5py.File(os.path.join(out, "unknown.h5"), "w") as f:
        f.create_dataset("stuff/frames", data=frames(8, 4))
        f.create_group("other").create_dataset("x", data=[1.0, 2.0])


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    makers = (id01, p10, i16, i16_bragg, nexus, sixs, unknown)
    wanted = sys.argv[2:]   # names of makers to run (default: all)
    for make in makers:
        if not wanted or make.__name__ in wanted:
            make(out)
    print("ok")
