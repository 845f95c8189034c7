"""Makes the Formats test fixtures with numpy (and h5py for the HDF5 ones).

Run from this folder: python3 make_fixtures.py. Values follow the formulas in
FormatsTests.swift (`Expected`), so the tests check every element, not just shapes.
"""
import numpy as np

SHAPE = (2, 3, 4)
N = 24
i = np.arange(N)

def values(kind):
    if kind == 'bool':
        return (i % 3 == 0)
    if kind in ('int8', 'int16', 'int32', 'int64'):
        return (i % 7 - 3) * {'int8': 10, 'int16': 1000, 'int32': 100000, 'int64': 10**12}[kind]
    if kind in ('uint8', 'uint16', 'uint32', 'uint64'):
        return (i % 11) * {'uint8': 20, 'uint16': 6000, 'uint32': 400000000, 'uint64': 10**15}[kind]
    if kind in ('float32', 'float64'):
        return i * 0.5 - 3.25
    if kind in ('complex64', 'complex128'):
        return i * 0.5 - 1j * (i * 0.25 - 1)
    raise ValueError(kind)

KINDS = ['bool', 'uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
         'float32', 'float64', 'complex64', 'complex128']

for k in KINDS:
    a = values(k).astype(k).reshape(SHAPE)
    np.save(f'{k}.npy', a)
# Fortran order, big-endian, and both at once.
np.save('float32_fortran.npy', np.asfortranarray(values('float32').astype('f4').reshape(SHAPE)))
np.save('int16_fortran_be.npy', np.asfortranarray(values('int16').astype('>i2').reshape(SHAPE)))
for k, code in [('float32', '>f4'), ('float64', '>f8'), ('int32', '>i4'), ('uint16', '>u2'), ('complex64', '>c8'), ('complex128', '>c16')]:
    np.save(f'{k}_be.npy', values(k).astype(code).reshape(SHAPE))
# Header versions 2.0 and 3.0.
for v in [(2, 0), (3, 0)]:
    with open(f'float32_v{v[0]}.npy', 'wb') as f:
        np.lib.format.write_array(f, values('float32').astype('f4').reshape(SHAPE), version=v)
# 1D, 2D and 0-d arrays.
np.save('float64_1d.npy', values('float64'))
np.save('float32_2d.npy', values('float32').astype('f4').reshape(4, 6))
np.save('scalar.npy', np.float64(2.5))
# NPZ, stored and deflated.
arrs = {'f': values('float32').astype('f4').reshape(SHAPE), 'c': values('complex64').astype('c8').reshape(6, 4),
        'u': values('uint16').astype('u2')}
np.savez('stored.npz', **arrs)
np.savez_compressed('deflated.npz', **arrs)
# Bad inputs.
good = open('float32.npy', 'rb').read()
open('truncated_data.npy', 'wb').write(good[:len(good) - 10])
open('truncated_header.npy', 'wb').write(good[:40])
np.save('float16.npy', values('float32').astype('f2'))
np.save('structured.npy', np.zeros(3, dtype=[('a', 'f4'), ('b', 'i4')]))
open('not_hdf5.h5', 'w').write('this is a text file, not HDF5\n')

try:
    import h5py
except ImportError:
    print('h5py missing: HDF5 fixtures not remade')
else:
    with h5py.File('h5py_fixture.h5', 'w') as f:
        f.attrs['title'] = 'BraggKit test fixture'
        g = f.create_group('entry/data')
        g.create_dataset('data', data=values('float32').astype('f4').reshape(SHAPE), chunks=(1, 3, 2), compression='gzip')
        g.create_dataset('counts', data=values('uint16').astype('u2').reshape(SHAPE), chunks=(2, 1, 4), compression='gzip', shuffle=True)
        f.create_dataset('int16', data=values('int16').astype('i2').reshape(SHAPE))
        f.create_dataset('int64', data=values('int64').reshape(SHAPE))
        f.create_dataset('float64', data=values('float64').reshape(SHAPE))
        f.create_dataset('bool', data=values('bool').reshape(SHAPE))
        f.create_dataset('complex64', data=values('complex64').astype('c8').reshape(SHAPE), compression='gzip')
        f.create_dataset('complex128', data=values('complex128').reshape(SHAPE))
        pairs = np.stack([values('complex64').real, values('complex64').imag], axis=-1).astype('f4').reshape(2, 3, 4, 2)
        f.create_dataset('pairs', data=pairs)
        f.create_dataset('big_endian', data=values('float32').astype('>f4').reshape(SHAPE))
        f.create_dataset('scalar', data=2.5)
        f['entry/data/data'].attrs['units'] = 'counts'
        f['entry/data/data'].attrs['energy'] = 9000.0
        f['entry/data/data'].attrs['frame'] = np.int32(7)
        f['entry/data/data'].attrs['q'] = np.array([1.0, 2.0, 3.0])
    print('h5py fixture written')

# A zip64 NPZ: lower zipfile's limits so that it writes zip64 records and extra fields
# for a small archive (real ones are over 4 GiB or 65535 members).
import io, zipfile
zipfile.ZIP64_LIMIT = 16
zipfile.ZIP_FILECOUNT_LIMIT = 1
with zipfile.ZipFile('zip64.npz', 'w', compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    for name, a in [('f', values('float32').astype('f4').reshape(SHAPE)), ('i', values('int32').astype('i4'))]:
        buf = io.BytesIO(); np.save(buf, a)
        with z.open(name + '.npy', 'w', force_zip64=True) as m:
            m.write(buf.getvalue())
