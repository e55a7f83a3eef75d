/*
 * What the benchmark driver's measurements share: loading a module, aborting on any error, timing loops,
 * finding keys and slots by label, and reading the process's resident memory.
 *
 * Every PKCS#11 call goes through CK(): a benchmark that silently measured errors would be worthless, so any
 * return value other than CKR_OK prints the call and its code and exits with status 3.
 */
#ifndef PYHSM_BENCH_DRIVER_UTIL_H
#define PYHSM_BENCH_DRIVER_UTIL_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ck_constants.h"
#include "pyhsm_gen.h"

#define CK_TRUE 1
#define CK_FALSE 0

static CK_FUNCTION_LIST *f;

static void die(const char *what, CK_RV rv) {
    fprintf(stderr, "driver: %s failed: CKR 0x%lx\n", what, rv);
    exit(3);
}

#define CK(call)                                   \
    do {                                           \
        CK_RV rv_ = (call);                        \
        if (rv_ != CKR_OK) die(#call, rv_);        \
    } while (0)

#define REQUIRE(cond)                                                  \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "driver: check failed: %s\n", #cond);      \
            exit(3);                                                   \
        }                                                              \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One result line for the runner: name, value, unit (tab separated). */
static void report(const char *name, double value, const char *unit) {
    printf("%s\t%.6g\t%s\n", name, value, unit);
    fflush(stdout);
}

/* Calls op(ctx) until `seconds` have passed and at least `min_iter` calls were made; returns calls per second. */
static double rate(double seconds, long min_iter, void (*op)(void *), void *ctx) {
    long n = 0;
    double start = now(), elapsed;
    do {
        op(ctx);
        n++;
        elapsed = now() - start;
    } while (elapsed < seconds || n < min_iter);
    return (double)n / elapsed;
}

static long vm_rss_kib(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!status) return -1;
    while (fgets(line, sizeof line, status))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(status);
    return kib;
}

static void *load_module(const char *path) {
    void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        fprintf(stderr, "driver: dlopen: %s\n", dlerror());
        exit(2);
    }
    CK_RV (*get_list)(CK_FUNCTION_LIST **) = (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(module, "C_GetFunctionList");
    REQUIRE(get_list != NULL);
    CK(get_list(&f));
    return module;
}

static CK_SLOT_ID slot_of(const char *label) {
    CK_SLOT_ID slots[256];
    CK_ULONG n = 256;
    char padded[32];
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, strnlen(label, sizeof padded));
    CK(f->C_GetSlotList(CK_TRUE, slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK(f->C_GetTokenInfo(slots[i], &ti));
        if (!memcmp(ti.label, padded, sizeof padded)) return slots[i];
    }
    fprintf(stderr, "driver: no token labelled %s\n", label);
    exit(2);
}

static CK_SESSION_HANDLE open_rw(CK_SLOT_ID slot) {
    CK_SESSION_HANDLE s;
    CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    return s;
}

/* The one object of `cls` labelled `label` (exactly one must exist). */
static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_ULONG cls, const char *label) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    CK(f->C_FindObjectsInit(s, t, 2));
    CK(f->C_FindObjects(s, h, 2, &n));
    CK(f->C_FindObjectsFinal(s));
    if (n != 1) {
        fprintf(stderr, "driver: %lu objects labelled %s (want 1)\n", n, label);
        exit(2);
    }
    return h[0];
}

#endif
