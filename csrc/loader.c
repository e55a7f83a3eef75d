/*
 * libpyhsm.so — the C side of pyhsm. Knows nothing of crypto.
 *
 * Exports the PKCS#11 entry points and forwards every call to the inner cffi extension (pyhsm._pkcs11) through
 * its CK_FUNCTION_LIST_3_0. Starts Python itself in a non-Python host, or joins the host's interpreter when it is
 * the same minor version. Never links libpython (all Python C-API calls go through dlsym'd pointers), so the same
 * file works in both kinds of host; see docs/architecture.md and design.md for why each step is here.
 */
#define _GNU_SOURCE
#include <Python.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyhsm_gen.h" /* generated from pyhsm/pkcs11/cdefs.py: PKCS#11 types and the X-macro function lists */

#define EXPORT __attribute__((visibility("default")))
#define CKR_OK 0x0UL
#define CKR_GENERAL_ERROR 0x5UL
#define CKR_ARGUMENTS_BAD 0x7UL
#define CKR_FUNCTION_NOT_PARALLEL 0x51UL
#define CKR_BUFFER_TOO_SMALL 0x150UL
#define CKR_CRYPTOKI_NOT_INITIALIZED 0x190UL
#define CKR_CRYPTOKI_ALREADY_INITIALIZED 0x191UL

#define DECLARE(name, params, args) EXPORT CK_RV name params;
PYHSM_V2_FUNCTIONS(DECLARE)
PYHSM_V3_FUNCTIONS(DECLARE)
#undef DECLARE

#ifndef PYHSM_LIBPYTHON
#error "PYHSM_LIBPYTHON (path of the libpython this was built for) must be defined"
#endif
#ifndef PYHSM_BUILTINS
#error "PYHSM_BUILTINS (the build interpreter's sys.builtin_module_names, space separated) must be defined"
#endif

#ifndef PYHSM_EXECUTABLE
#error "PYHSM_EXECUTABLE (the build's sys.executable, last-resort interpreter) must be defined"
#endif

/* ---- Python C-API, resolved at run time ------------------------------------------------------------- */
static struct {
    int (*IsInitialized)(void);
    const char *(*GetVersion)(void);
    void (*InitIsolatedConfig)(PyConfig *);
    PyStatus (*SetBytesString)(PyConfig *, wchar_t **, const char *);
    PyStatus (*InitializeFromConfig)(const PyConfig *);
    int (*StatusException)(PyStatus);
    void (*ConfigClear)(PyConfig *);
    PyThreadState *(*SaveThread)(void);
    PyGILState_STATE (*GILEnsure)(void);
    void (*GILRelease)(PyGILState_STATE);
    PyObject *(*ImportModule)(const char *);
    PyObject *(*CallMethod)(PyObject *, const char *, const char *, ...);
    void *(*LongAsVoidPtr)(PyObject *);
    PyObject *(*ErrOccurred)(void);
    void (*ErrPrint)(void);
    void (*ErrClear)(void);
    void (*DecRef)(PyObject *);
    PyObject *(*SysGetObject)(const char *);
    int (*ListAppend)(PyObject *, PyObject *);
    PyObject *(*DecodeFS)(const char *);
    int (*AppendInittab)(const char *, PyObject *(*)(void));
    void (*BeforeFork)(void);
    void (*AfterForkParent)(void);
    void (*AfterForkChild)(void);
} py;

static CK_FUNCTION_LIST_3_0 *inner;            /* the Python implementations */
static int initialized;                         /* C_Initialize succeeded and C_Finalize has not */
static volatile int forked;                     /* set in a forked child: it must initialise again */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static PyGILState_STATE fork_gil;

static void complain(const char *what, const char *detail) {
    fprintf(stderr, "pyhsm: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

/* Every call checks this. A flag set by a pthread_atfork child handler, not a getpid() comparison: getpid is a
 * system call (glibc no longer caches it), a third of the cheapest call. */
static int ready(void) { return initialized && !forked; }
static void mark_forked(void) { forked = 1; }
static pthread_once_t fork_watch = PTHREAD_ONCE_INIT;
static void watch_forks(void) { pthread_atfork(NULL, NULL, mark_forked); }

/* Directory holding this module (…/site-packages/pyhsm). */
static int module_dir(char *out, size_t size) {
    Dl_info info;
    if (!dladdr((void *)&module_dir, &info) || !info.dli_fname) return 0;
    char resolved[PATH_MAX];
    if (!realpath(info.dli_fname, resolved)) return 0;
    char *slash = strrchr(resolved, '/');
    if (!slash) return 0;
    *slash = '\0';
    return snprintf(out, size, "%s", resolved) < (int)size;
}

/* The interpreter that owns this install: PYHSM_PYTHON, else the venv around the module, else the build's. */
static void find_executable(char *out, size_t size) {
    const char *override = getenv("PYHSM_PYTHON");
    if (override && *override) {
        snprintf(out, size, "%s", override);
        return;
    }
    char dir[PATH_MAX], cfg[PATH_MAX + 32];
    if (module_dir(dir, sizeof dir)) {
        /* …/<venv>/lib/python3.X/site-packages/pyhsm: four levels up is the venv root */
        for (int i = 0; i < 4; i++) {
            char *slash = strrchr(dir, '/');
            if (!slash) break;
            *slash = '\0';
        }
        snprintf(cfg, sizeof cfg, "%s/pyvenv.cfg", dir);
        if (access(cfg, R_OK) == 0) {
            snprintf(out, size, "%s/bin/python3", dir);
            return;
        }
    }
    snprintf(out, size, "%s", PYHSM_EXECUTABLE);
}

static int resolve(void *handle) {
#define SYM(field, name) if (!(*(void **)&py.field = dlsym(handle, name))) { complain("missing Python symbol", name); return 0; }
    SYM(IsInitialized, "Py_IsInitialized") SYM(GetVersion, "Py_GetVersion")
    SYM(InitIsolatedConfig, "PyConfig_InitIsolatedConfig") SYM(SetBytesString, "PyConfig_SetBytesString")
    SYM(InitializeFromConfig, "Py_InitializeFromConfig") SYM(StatusException, "PyStatus_Exception")
    SYM(ConfigClear, "PyConfig_Clear") SYM(SaveThread, "PyEval_SaveThread")
    SYM(GILEnsure, "PyGILState_Ensure") SYM(GILRelease, "PyGILState_Release")
    SYM(ImportModule, "PyImport_ImportModule") SYM(CallMethod, "PyObject_CallMethod")
    SYM(LongAsVoidPtr, "PyLong_AsVoidPtr") SYM(ErrOccurred, "PyErr_Occurred") SYM(ErrPrint, "PyErr_Print")
    SYM(ErrClear, "PyErr_Clear") SYM(DecRef, "Py_DecRef") SYM(SysGetObject, "PySys_GetObject")
    SYM(ListAppend, "PyList_Append") SYM(DecodeFS, "PyUnicode_DecodeFSDefault")
    SYM(AppendInittab, "PyImport_AppendInittab")
    SYM(BeforeFork, "PyOS_BeforeFork") SYM(AfterForkParent, "PyOS_AfterFork_Parent")
    SYM(AfterForkChild, "PyOS_AfterFork_Child")
#undef SYM
    return 1;
}

/* A host that already runs Python must run the minor version pyhsm was built for: anything else hangs or crashes. */
static int same_python(void) {
    char expected[16];
    snprintf(expected, sizeof expected, "%d.%d.", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    const char *running = py.GetVersion();
    if (strncmp(running, expected, strlen(expected)) == 0) return 1;
    fprintf(stderr, "pyhsm: this process runs Python %.*s but pyhsm was built for %d.%d; refusing to load\n",
            (int)strcspn(running, " "), running, PY_MAJOR_VERSION, PY_MINOR_VERSION);
    return 0;
}

static void fork_prepare(void) { fork_gil = py.GILEnsure(); py.BeforeFork(); }
static void fork_parent(void) { py.AfterForkParent(); py.GILRelease(fork_gil); }
static void fork_child(void) { py.AfterForkChild(); py.GILRelease(fork_gil); }

/* Debian's python3.11 executable has modules such as _struct built in, but its libpython3.11.so lists fewer in its
 * table of built-in modules even though it contains their init functions. An interpreter embedded from that library
 * would then fail to import them; registering every built-in module of the build interpreter that the library
 * contains makes the embedded interpreter match the one pyhsm was installed with. */
static void register_builtins(void *libpython) {
    char names[] = PYHSM_BUILTINS, symbol[128], *rest = NULL;
    for (char *name = strtok_r(names, " ", &rest); name; name = strtok_r(NULL, " ", &rest)) {
        snprintf(symbol, sizeof symbol, "PyInit_%s", name);
        void *init = dlsym(libpython, symbol);
        if (init) py.AppendInittab(name, (PyObject * (*)(void)) init);
    }
}

static int start_interpreter(void *libpython) {
    register_builtins(libpython);
    char executable[PATH_MAX];
    find_executable(executable, sizeof executable);
    PyConfig config;
    py.InitIsolatedConfig(&config);
    config.install_signal_handlers = 0; /* the host owns its signals (NGINX, the JVM) */
    PyStatus status = py.SetBytesString(&config, &config.executable, executable);
    if (!py.StatusException(status)) status = py.InitializeFromConfig(&config);
    py.ConfigClear(&config);
    if (py.StatusException(status)) {
        complain("could not start Python", status.err_msg);
        return 0;
    }
    /* Only an interpreter we own needs help across fork(); a Python host handles its own. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    return 1;
}

/* With the GIL held: import the bootstrap (adding our site-packages for a foreign Python host) and start it. */
static CK_FUNCTION_LIST_3_0 *call_bootstrap(void) {
    PyObject *module = py.ImportModule("pyhsm.pkcs11.bootstrap");
    if (!module) {
        char dir[PATH_MAX];
        PyObject *path = py.SysGetObject("path");
        if (module_dir(dir, sizeof dir) && path) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0';
            PyObject *entry = py.DecodeFS(dir);
            py.ErrClear();
            if (entry) { py.ListAppend(path, entry); py.DecRef(entry); }
            module = py.ImportModule("pyhsm.pkcs11.bootstrap");
        }
    }
    if (!module) {
        py.ErrPrint();
        complain("cannot import pyhsm (set PYHSM_PYTHON to the python that has it installed)", NULL);
        return NULL;
    }
    PyObject *address = py.CallMethod(module, "start", NULL);
    py.DecRef(module);
    if (!address) {
        py.ErrPrint();
        complain("pyhsm failed to start", NULL);
        return NULL;
    }
    void *table = py.LongAsVoidPtr(address);
    py.DecRef(address);
    if (py.ErrOccurred()) { py.ErrPrint(); return NULL; }
    return table;
}

static CK_RV start(void) {
    void *probe = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
    int host_python = probe && ((int (*)(void))probe)();
    void *handle = RTLD_DEFAULT;
    if (!host_python) {
        /* RTLD_GLOBAL: the inner extension (and cryptography's) resolve Py* symbols from the global scope. */
        handle = dlopen(PYHSM_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL);
        if (!handle) handle = dlopen(PYHSM_LIBPYTHON_SONAME, RTLD_NOW | RTLD_GLOBAL);
        if (!handle) {
            complain("cannot load libpython", dlerror());
            return CKR_GENERAL_ERROR;
        }
    }
    if (!resolve(handle)) return CKR_GENERAL_ERROR;
    host_python = py.IsInitialized();
    if (!same_python()) return CKR_GENERAL_ERROR;
    if (!host_python && !start_interpreter(handle)) return CKR_GENERAL_ERROR;
    PyGILState_STATE gil = py.GILEnsure();
    CK_FUNCTION_LIST_3_0 *table = call_bootstrap();
    py.GILRelease(gil);
    if (!host_python) py.SaveThread(); /* Py_Initialize left this thread holding the GIL */
    /* Sentinel: cffi answers 0 (CKR_OK!) from a callback that failed to register; a live one says NOT_PARALLEL. */
    if (!table || table->C_GetFunctionStatus(0) != CKR_FUNCTION_NOT_PARALLEL) {
        complain("internal ABI failed to initialise", NULL);
        return CKR_GENERAL_ERROR;
    }
    inner = table;
    return CKR_OK;
}

/* ---- entry points answered here ------------------------------------------------------------------------- */
EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs) {
    pthread_mutex_lock(&start_lock);
    CK_RV rv = inner ? CKR_OK : start();
    pthread_once(&fork_watch, watch_forks);
    if (rv == CKR_OK && initialized && forked) {
        /* A forked child: everything the parent had open belongs to the parent. */
        PyGILState_STATE gil = py.GILEnsure();
        PyObject *module = py.ImportModule("pyhsm.pkcs11.bootstrap");
        PyObject *done = module ? py.CallMethod(module, "after_fork_child", NULL) : NULL;
        if (!done) { py.ErrPrint(); rv = CKR_GENERAL_ERROR; }
        if (done) py.DecRef(done);
        if (module) py.DecRef(module);
        py.GILRelease(gil);
        initialized = 0;
    }
    if (rv == CKR_OK) {
        rv = inner->C_Initialize(pInitArgs);
        if (rv == CKR_OK) { initialized = 1; forked = 0; }
    }
    pthread_mutex_unlock(&start_lock);
    return rv;
}

EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved) {
    if (!ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    pthread_mutex_lock(&start_lock);
    CK_RV rv = inner->C_Finalize(pReserved);
    if (rv == CKR_OK) initialized = 0;
    pthread_mutex_unlock(&start_lock);
    return rv;
}

/* CK_INFO never changes while the library is loaded: the engine fills it once, later calls copy it here. This keeps
 * the most trivial call (the per-call floor of docs/baselines.md, <= 1 us) out of Python. */
static CK_INFO info_cache;
static int info_cached; /* read and written with atomics: threads may race to fill it, all with the same value */

EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo) {
    if (!ready()) return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (!pInfo) return CKR_ARGUMENTS_BAD;
    if (!__atomic_load_n(&info_cached, __ATOMIC_ACQUIRE)) {
        CK_INFO fresh;
        CK_RV rv = inner->C_GetInfo(&fresh);
        if (rv != CKR_OK) return rv;
        memcpy(&info_cache, &fresh, sizeof fresh);
        __atomic_store_n(&info_cached, 1, __ATOMIC_RELEASE);
    }
    memcpy(pInfo, &info_cache, sizeof info_cache); /* hosts may pass misaligned pointers */
    return CKR_OK;
}

/* Everything else: refuse before C_Initialize (or in a child that has not re-initialised), else forward. */
#define TRAMPOLINE(name, params, args) \
    EXPORT CK_RV name params { return ready() ? inner->name args : CKR_CRYPTOKI_NOT_INITIALIZED; }
PYHSM_FORWARDED(TRAMPOLINE)
#undef TRAMPOLINE

#define ENTRY(name, params, args) name,
static CK_FUNCTION_LIST function_list_2_40 = {{2, 40}, PYHSM_V2_FUNCTIONS(ENTRY)};
static CK_FUNCTION_LIST_3_0 function_list_3_0 = {{3, 0}, PYHSM_V2_FUNCTIONS(ENTRY) PYHSM_V3_FUNCTIONS(ENTRY)};
#undef ENTRY

static CK_INTERFACE interfaces[] = {
    {(CK_CHAR *)"PKCS 11", &function_list_3_0, 0},
    {(CK_CHAR *)"PKCS 11", &function_list_2_40, 0},
};
#define INTERFACE_COUNT (sizeof interfaces / sizeof interfaces[0])

EXPORT CK_RV C_GetFunctionList(CK_VOID_PTR ppFunctionList) {
    if (!ppFunctionList) return CKR_ARGUMENTS_BAD;
    CK_FUNCTION_LIST *list = &function_list_2_40;
    memcpy(ppFunctionList, &list, sizeof list); /* hosts may pass misaligned pointers */
    return CKR_OK;
}

EXPORT CK_RV C_GetInterfaceList(CK_VOID_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
    if (!pulCount) return CKR_ARGUMENTS_BAD;
    CK_ULONG count = INTERFACE_COUNT, capacity;
    if (!pInterfacesList) {
        memcpy(pulCount, &count, sizeof count);
        return CKR_OK;
    }
    memcpy(&capacity, pulCount, sizeof capacity);
    memcpy(pulCount, &count, sizeof count);
    if (capacity < count) return CKR_BUFFER_TOO_SMALL;
    memcpy(pInterfacesList, interfaces, sizeof interfaces);
    return CKR_OK;
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_VOID_PTR ppInterface,
                            CK_FLAGS flags) {
    if (!ppInterface) return CKR_ARGUMENTS_BAD;
    if (pInterfaceName && strcmp((const char *)pInterfaceName, "PKCS 11") != 0) return CKR_ARGUMENTS_BAD;
    CK_VERSION wanted;
    if (pVersion) memcpy(&wanted, pVersion, sizeof wanted);
    for (size_t i = 0; i < INTERFACE_COUNT; i++) {
        CK_VERSION *have = (CK_VERSION *)interfaces[i].pFunctionList; /* version is each list's first member */
        if (pVersion && (have->major != wanted.major || have->minor != wanted.minor)) continue;
        if ((interfaces[i].flags & flags) != flags) continue;
        CK_INTERFACE *found = &interfaces[i];
        memcpy(ppInterface, &found, sizeof found);
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD; /* no interface with that name, version and flags */
}
