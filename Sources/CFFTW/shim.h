// complex.h first would make fftwf_complex a C99 complex; we want the plain
// float[2] layout, which imports as a (Float, Float) tuple: we only pass pointers.
#include <fftw3.h>

// FFTW_* planner flags are macros with shifts that import poorly; expose them.
static inline unsigned bk_fftw_estimate(void) { return FFTW_ESTIMATE; }
static inline unsigned bk_fftw_measure(void) { return FFTW_MEASURE; }
static inline unsigned bk_fftw_patient(void) { return FFTW_PATIENT; }
static inline unsigned bk_fftw_exhaustive(void) { return FFTW_EXHAUSTIVE; }
static inline unsigned bk_fftw_wisdom_only(void) { return FFTW_WISDOM_ONLY; }
static inline int bk_fftw_forward(void) { return FFTW_FORWARD; }
static inline int bk_fftw_backward(void) { return FFTW_BACKWARD; }
