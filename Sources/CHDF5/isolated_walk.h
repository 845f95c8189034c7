// The group walk of an untrusted HDF5 file, run in a forked child process (#22).
//
// libhdf5 1.10.8 dereferences garbage on some corrupt group B-trees (found by fuzzing:
// SIGSEGV in H5G__node_sumup under H5Gget_info), and no error handler can catch that. So
// before `HDF5File(reading:)` lets Swift walk a file, the same library calls as its walk
// (HDF5File.datasets(): H5Gget_info, H5Lget_name_by_idx, H5Lexists on every prefix,
// H5Oopen, H5Oget_info, H5Dopen2, dataspace and datatype queries) are made here in a
// child; a child killed by a signal means the file would crash the caller.
//
// The child runs only C (libhdf5 and glibc's fork-safe malloc), never Swift or Foundation,
// so no lock another thread held at fork time can stop it. It never closes or flushes
// anything (it leaves by _exit), so HDF5 files the parent has open, writable ones too,
// are untouched. Its crash handlers are the defaults (no libFuzzer or Swift backtrace
// handler running in it) and it dumps no core.
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    unsigned long long *keys;   // (fileno, address) pairs hashed into one slot; 0 = empty
    size_t capacity, count;
    long links, max_links;
    int max_depth;
} bk_walk_state;

static inline int bk_walk_first_visit(bk_walk_state *s, unsigned long fileno, unsigned long long addr) {
    unsigned long long key = (addr * 0x9E3779B97F4A7C15ULL) ^ ((unsigned long long)fileno << 1) ^ 1ULL;
    if (2 * (s->count + 1) > s->capacity) {
        size_t cap = s->capacity ? 2 * s->capacity : 1024;
        unsigned long long *k = (unsigned long long *)calloc(cap, sizeof *k);
        if (!k) return 0;
        for (size_t i = 0; i < s->capacity; i++) {
            if (!s->keys[i]) continue;
            size_t j = (size_t)(s->keys[i] % cap);
            while (k[j]) j = (j + 1) % cap;
            k[j] = s->keys[i];
        }
        free(s->keys); s->keys = k; s->capacity = cap;
    }
    size_t j = (size_t)(key % s->capacity);
    while (s->keys[j]) { if (s->keys[j] == key) return 0; j = (j + 1) % s->capacity; }
    s->keys[j] = key; s->count++;
    return 1;
}

static inline void bk_walk_group(hid_t file, const char *group, int depth, bk_walk_state *s) {
    if (depth >= s->max_depth) return;
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) return;
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0 || info.nlinks > (hsize_t)s->max_links) { H5Gclose(g); return; }
    for (hsize_t i = 0; i < info.nlinks; i++) {
        if (++s->links > s->max_links) break;
        ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        if (n < 0) continue;
        size_t glen = strlen(group);
        char *child = (char *)malloc(glen + (size_t)n + 2);
        if (!child) break;
        size_t at = 0;
        if (strcmp(group, "/") != 0) { memcpy(child, group, glen); at = glen; }
        child[at++] = '/';
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, child + at, (size_t)n + 1, H5P_DEFAULT);
        child[at + (size_t)n] = 0;
        // Every prefix, as HDF5File.exists does before opening.
        int exists = 1;
        for (char *p = child + 1; exists; p++) {
            if (*p == '/' || *p == 0) {
                char c = *p; *p = 0;
                if (H5Lexists(file, child, H5P_DEFAULT) <= 0) exists = 0;
                *p = c;
                if (c == 0) break;
            }
        }
        hid_t o = exists ? H5Oopen(file, child, H5P_DEFAULT) : -1;
        if (o >= 0) {
            H5I_type_t type = H5Iget_type(o);
            unsigned long fileno = 0; unsigned long long addr = 0;
            int known = bk_h5o_identity(o, &fileno, &addr) >= 0;
            H5Oclose(o);
            if (type == H5I_GROUP && known && bk_walk_first_visit(s, fileno, addr)) {
                bk_walk_group(file, child, depth + 1, s);
            } else if (type == H5I_DATASET) {
                hid_t d = H5Dopen2(file, child, H5P_DEFAULT);
                if (d >= 0) {
                    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
                    if (sp >= 0) {
                        hsize_t dims[H5S_MAX_RANK];
                        if (H5Sget_simple_extent_ndims(sp) <= H5S_MAX_RANK) H5Sget_simple_extent_dims(sp, dims, NULL);
                        H5Sclose(sp);
                    }
                    if (t >= 0) {
                        H5Tget_size(t);
                        if (H5Tget_class(t) == H5T_COMPOUND && H5Tget_nmembers(t) == 2) {
                            for (unsigned k = 0; k < 2; k++) {
                                hid_t mt = H5Tget_member_type(t, k);
                                if (mt >= 0) { H5Tget_class(mt); H5Tget_size(mt); H5Tclose(mt); }
                                char *name = H5Tget_member_name(t, k);
                                if (name) H5free_memory(name);
                            }
                        }
                        H5Tclose(t);
                    }
                    H5Dclose(d);
                }
            }
        }
        free(child);
    }
    H5Gclose(g);
}

/// Walks `path`'s groups in a child process. Returns 0 when the child finished (whether or
/// not the library reported errors), the signal that ended it otherwise (SIGXCPU: it used
/// over `seconds` of CPU time), or -1 when no child could be started.
static inline int bk_h5_isolated_walk(const char *path, unsigned seconds, int max_depth, long max_links) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const int defaults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS,
                                 SIGINT, SIGTERM, SIGHUP, SIGXCPU, SIGPIPE };
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) signal(defaults[i], SIG_DFL);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        // CPU time, not wall time: a loaded machine must not make a sound file look stuck.
        struct rlimit cpu = { seconds, seconds + 10 };
        setrlimit(RLIMIT_CPU, &cpu);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            bk_walk_state s = { NULL, 0, 0, 0, max_links, max_depth };
            unsigned long fileno = 0; unsigned long long addr = 0;
            hid_t r = H5Oopen(f, "/", H5P_DEFAULT);
            if (r >= 0) { if (bk_h5o_identity(r, &fileno, &addr) >= 0) bk_walk_first_visit(&s, fileno, addr); H5Oclose(r); }
            bk_walk_group(f, "/", 0, &s);
        }
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}
