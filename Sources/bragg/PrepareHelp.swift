// The long help of `bragg prepare` (its discussion), kept beside the command so that
// PrepareCommand.swift shows the options and the calls into the library on one screen.

extension PrepareCommand {
    static let discussion = """
        Each SCAN is a frame stack (frames = rocking angles, rows, columns): an HDF5/NeXus \
        file (FILE or FILE:DATASET; by default /entry/instrument/detector/data, /entry/data/data, \
        /entry_1/data_1/data or the first 3D dataset under /entry/instrument), a multi-page \
        TIFF, a folder of single-frame TIFFs (a series, in natural name order), or a .npy file.

        Per scan: negative/NaN values mark their pixel bad; the dark is subtracted (clipped at \
        0) and the flat field divided out; frames are scaled to the first scan's mean monitor \
        (--monitor); hot pixels (frame sum > --hot-factor × (neighbours' median + 1)) and \
        constant pixels among bright neighbours (dead, stuck, gaps) are masked and filled. \
        Scans are registered to the first (3D cross-correlation of intensities on a box around \
        the Bragg peak, upsampled DFT, 1/--upsampling pixel), shifted (Fourier) and summed; \
        a scan that correlates less than --min-correlation is left out with a message. Only \
        the running sum and one scan are held in memory.

        The sum is centred on the Bragg peak (--centre com or max), cropped to the largest size \
        of the form 2^a 3^b 5^c around it (or --size, padded with masked voxels), optionally \
        binned, and written as a CXI file: /entry_1/data_1/data (pattern), /entry_1/data_1/mask \
        (nonzero = bad), geometry under /entry_1/instrument_1 (from the first scan's NeXus \
        metadata, or the options), and each scan's shift and correlation under \
        /entry_1/image_1/process_1.

        Beamlines (--beamline, or detected): with --spec FILE --scan N the scan is APS 34-ID-C's \
        (--beamline 34idc): SCAN is the folder of the scan's TIFF frames, and the SPEC file gives \
        everything else: the rocked circle and its step (the #S command), every circle angle \
        (#O/#P: Delta, Theta, Chi, Phi, Gamma), the energy (the Energy motor, keV), the distance \
        (camdist, mm), the detector and its pixel size (#UIMDET), the region of interest of the \
        frames on the detector (#UIMR5) and the monitor (the Monitor column). The folder must hold \
        one frame per point of the scan. Full-detector --dark and --flat files are cut to the region \
        of interest. At 34-ID-C --dark is the detector's bad-pixel map, not a background: pixels \
        where it exceeds 1 are masked (nothing is subtracted); --flat is the white field: pixels \
        under 100 counts in it are masked and the frames are divided by it scaled to mean 1. The \
        geometry (Q from the circles at the pattern's centre, the detector pixel of the centre) \
        goes into the CXI file; --energy-kev, --distance, --pixel-um, --two-theta and \
        --rocking-step override it, and say so (energy, distance and pixel size enter the \
        diffractometer model, so a file without a distance gets its full geometry from --distance). \
        Diamond I16 files (--beamline i16) get the six-circle of H. You (1999) as diffcalc defines \
        it (mu, eta, chi, phi; gam, delta); an I13-1 file, whose robot-arm detector has no model \
        here, needs --two-theta.

        A series of states in one shape: with --out DIR/ every SCAN is one state (or list states \
        of several scans in --states FILE; with --spec, give one TIFF folder per --scan). Every \
        file is opened and checked (one detector frame size across states, no existing output \
        without --force) before any frame is read; each state is summed on its own, then every \
        state is cropped to one size around its own Bragg peak: --size, --like's, or the largest \
        fast size that fits around every state's peak; one DIR/NAME.cxi per state (NAME: the \
        folder or file name, or the --states name).
        """
}
