/* The C peer of `bragg bench fft`: a forward + inverse in-place 3D single-precision
 * complex FFT with FFTW, same flags, threads and wisdom file as BraggKit.
 * Build: cc -O2 bench/fft_c.c -o /tmp/fft_c -lfftw3f_threads -lfftw3f -lm -lpthread
 * Run:   /tmp/fft_c SIZE THREADS EFFORT(measure|patient) REPEATS [WISDOM_FILE] */
#include <fftw3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 128, threads = argc > 2 ? atoi(argv[2]) : 1;
    const char *effort = argc > 3 ? argv[3] : "measure";
    int repeats = argc > 4 ? atoi(argv[4]) : 20;
    const char *wisdom = argc > 5 ? argv[5] : NULL;
    unsigned flags = strcmp(effort, "patient") == 0 ? FFTW_PATIENT : strcmp(effort, "estimate") == 0 ? FFTW_ESTIMATE : FFTW_MEASURE;
    fftwf_init_threads();
    if (wisdom) fftwf_import_wisdom_from_filename(wisdom);
    fftwf_plan_with_nthreads(threads);
    size_t N = (size_t)n * n * n;
    fftwf_complex *a = fftwf_malloc(sizeof(fftwf_complex) * N);
    double t0 = now();
    fftwf_plan f = fftwf_plan_dft_3d(n, n, n, a, a, FFTW_FORWARD, flags);
    fftwf_plan b = fftwf_plan_dft_3d(n, n, n, a, a, FFTW_BACKWARD, flags);
    double plan = now() - t0;
    for (size_t i = 0; i < N; i++) { a[i][0] = (float)(i % 17) * 0.1f; a[i][1] = 0; }
    double *t = malloc(sizeof(double) * (repeats + 2));
    for (int r = 0; r < repeats + 2; r++) {
        double s = now();
        fftwf_execute(f); fftwf_execute(b);
        t[r] = now() - s;
        for (size_t i = 0; i < N; i++) { a[i][0] /= N; a[i][1] /= N; }
    }
    qsort(t + 2, repeats, sizeof(double), cmp);
    double med = repeats % 2 ? t[2 + repeats / 2] : 0.5 * (t[2 + repeats / 2 - 1] + t[2 + repeats / 2]);
    printf("{\"bench\":\"fft_c\",\"size\":%d,\"threads\":%d,\"effort\":\"%s\",\"median_ms\":%.4f,\"plan_s\":%.3f}\n", n, threads, effort, med * 1e3, plan);
    return 0;
}
