#include <mpi.h>

// Open MPI's handles (MPI_COMM_WORLD, MPI_BYTE, ...) are macros over addresses of
// library globals, which Swift cannot import; expose each through a function.
static inline MPI_Comm bk_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype bk_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype bk_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Status *bk_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int bk_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int bk_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int bk_mpi_success(void) { return MPI_SUCCESS; }
// The source of a received message (a field of MPI_Status).
static inline int bk_mpi_status_source(const MPI_Status *s) { return s->MPI_SOURCE; }
