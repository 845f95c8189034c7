#include <hdf5.h>
#include <string.h>

// HDF5's type and property identifiers are macros over globals that H5open()
// initialises; Swift cannot import them, so expose each through a function.
static inline hid_t bk_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t bk_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t bk_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t bk_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t bk_h5t_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t bk_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t bk_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t bk_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t bk_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t bk_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t bk_h5t_native_hbool(void) { return H5T_NATIVE_HBOOL; }
static inline hid_t bk_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t bk_h5t_std_ref_obj(void) { return H5T_STD_REF_OBJ; }
static inline hid_t bk_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t bk_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t bk_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
static inline hid_t bk_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t bk_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t bk_h5s_all(void) { return H5S_ALL; }
static inline unsigned bk_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned bk_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline unsigned bk_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned bk_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline hsize_t bk_h5s_unlimited(void) { return H5S_UNLIMITED; }
static inline hid_t bk_h5p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t bk_h5p_file_create(void) { return H5P_FILE_CREATE; }

// An identity for the object behind `obj` within its file (its header address), so a walk
// through hard or soft links can visit each group once. HDF5 1.12 replaced addresses by
// tokens; for the native file format the token's first bytes are the address.
static inline int bk_h5o_identity(hid_t obj, unsigned long *fileno, unsigned long long *key) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0) return -1;
    unsigned long long k = 0;
    memcpy(&k, &info.token, sizeof(k) < sizeof(info.token) ? sizeof(k) : sizeof(info.token));
    *fileno = info.fileno; *key = k;
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return -1;
    *fileno = info.fileno; *key = (unsigned long long)info.addr;
#endif
    return 0;
}
#include "isolated_walk.h"
