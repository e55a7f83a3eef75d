/*
 * What every C test host shares: loading the module, printing checks, finding the test token and objects.
 * Each check prints "ok <name>" or "FAIL <name>: got 0x.. want 0x.."; `failures` counts the latter.
 */
#ifndef PYHSM_TEST_COMMON_H
#define PYHSM_TEST_COMMON_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_constants.h"
#include "pyhsm_gen.h"

static CK_FUNCTION_LIST *f;
static int failures;
static const char *token_label; /* the label of the token to use */

static void expect(const char *name, CK_RV got, CK_RV want) {
    if (got == want) {
        printf("ok %s\n", name);
    } else {
        printf("FAIL %s: got 0x%lx want 0x%lx\n", name, got, want);
        failures++;
    }
}

static void check(const char *name, int condition) { expect(name, condition ? 0 : 1, 0); }

/* dlopen the module the way hosts do (RTLD_LOCAL) and fetch its v2.40 function list. */
static void *load_module(const char *path) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(2);
    }
    CK_RV (*get_list)(CK_FUNCTION_LIST **) = dlsym(module, "C_GetFunctionList");
    if (!get_list || get_list(&f) != CKR_OK) exit(2);
    return module;
}

static inline CK_OBJECT_HANDLE find(CK_SESSION_HANDLE s, CK_ULONG cls, const char *label) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h = 0;
    CK_ULONG n = 0;
    f->C_FindObjectsInit(s, t, 2);
    f->C_FindObjects(s, &h, 1, &n);
    f->C_FindObjectsFinal(s);
    return n == 1 ? h : 0;
}

static inline CK_SLOT_ID token_slot(void) {
    char padded[32];
    memset(padded, ' ', sizeof padded);
    memcpy(padded, token_label, strnlen(token_label, sizeof padded));
    CK_ULONG n = 0;
    f->C_GetSlotList(1, NULL, &n); /* the shared test store may hold hundreds of tokens */
    CK_SLOT_ID *slots = calloc(n + 1, sizeof *slots), found = (CK_SLOT_ID)-1;
    if (f->C_GetSlotList(1, slots, &n) != CKR_OK) n = 0;
    for (CK_ULONG i = 0; i < n && found == (CK_SLOT_ID)-1; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !memcmp(ti.label, padded, sizeof padded)) found = slots[i];
    }
    free(slots);
    return found;
}

#endif
