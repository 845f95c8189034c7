#include <hdf5.h>

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
