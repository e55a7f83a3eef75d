/*
 * A minimal non-Python PKCS#11 host: dlopen(RTLD_LOCAL) + C_GetFunctionList, then one scenario per subcommand.
 * Every check prints "ok <name>" or "FAIL <name>: got 0x.. want 0x.." and the exit status counts failures.
 * Usage: host MODULE SUBCOMMAND [PIN KEY-LABEL TOKEN-LABEL]
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static int cmd_info(void) {
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_INFO info;
    memset(&info, 0xAA, sizeof info);
    expect("C_GetInfo", f->C_GetInfo(&info), CKR_OK);
    check("manufacturer is blank padded pyhsm", memcmp(info.manufacturerID, "pyhsm                           ", 32) == 0);
    check("cryptoki version 3.0", info.cryptokiVersion.major == 3 && info.cryptokiVersion.minor == 0);
    CK_ULONG count = 0;
    expect("C_GetSlotList size query", f->C_GetSlotList(0, NULL, &count), CKR_OK);
    check("at least one slot", count >= 1);
    CK_SLOT_ID *slots = calloc(count, sizeof *slots); /* the shared test store may hold hundreds of tokens */
    CK_ULONG small = 0;
    expect("C_GetSlotList too small", f->C_GetSlotList(0, slots, &small), CKR_BUFFER_TOO_SMALL);
    check("too small reports the needed count", small == count);
    expect("C_GetSlotList", f->C_GetSlotList(0, slots, &count), CKR_OK);
    free(slots);
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    return failures;
}

static int cmd_table(void) {
    void **fn = (void **)&f->C_Initialize;
    int missing = 0;
    for (int i = 0; i < 68; i++) missing += fn[i] == NULL;
    check("all 68 v2.40 entries present", missing == 0);
    check("v2 list version is 2.40", f->version.major == 2 && f->version.minor == 40);
    return failures;
}

static int cmd_interface(void *module) {
    CK_RV (*get_interface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_VOID_PTR, CK_FLAGS) = dlsym(module, "C_GetInterface");
    CK_RV (*get_list)(CK_VOID_PTR, CK_ULONG_PTR) = dlsym(module, "C_GetInterfaceList");
    check("C_GetInterface exported", get_interface != NULL);
    CK_ULONG n = 0;
    expect("C_GetInterfaceList size query", get_list(NULL, &n), CKR_OK);
    check("two interfaces", n == 2);
    CK_INTERFACE *iface = NULL;
    expect("C_GetInterface default", get_interface(NULL, NULL, &iface, 0), CKR_OK);
    CK_FUNCTION_LIST_3_0 *v3 = iface->pFunctionList;
    check("default is 3.0", v3->version.major == 3 && v3->version.minor == 0);
    void **fn = (void **)&v3->C_Initialize;
    int missing = 0;
    for (int i = 0; i < 92; i++) missing += fn[i] == NULL;
    check("all 92 v3.0 entries present", missing == 0);
    CK_VERSION v240 = {2, 40};
    expect("C_GetInterface 2.40", get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &iface, 0), CKR_OK);
    check("2.40 list", ((CK_FUNCTION_LIST *)iface->pFunctionList)->version.minor == 40);
    expect("C_GetInterface unknown name", get_interface((CK_UTF8CHAR_PTR) "nope", NULL, &iface, 0), CKR_ARGUMENTS_BAD);
    expect("v3 C_Initialize", v3->C_Initialize(NULL), CKR_OK);
        expect("unimplemented C_MessageEncryptInit", v3->C_MessageEncryptInit(1, NULL, 1), CKR_FUNCTION_NOT_SUPPORTED);
    expect("v3 C_Finalize", v3->C_Finalize(NULL), CKR_OK);
    return failures;
}

static int cmd_lifecycle(void) {
    CK_INFO info;
    expect("C_GetInfo before C_Initialize", f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    expect("C_Finalize before C_Initialize", f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.pReserved = &args;
    expect("C_Initialize with pReserved", f->C_Initialize(&args), CKR_ARGUMENTS_BAD);
    args.pReserved = NULL;
    args.CreateMutex = (CK_CREATEMUTEX)1; /* only one of four mutex functions */
    expect("C_Initialize with partial mutex functions", f->C_Initialize(&args), CKR_ARGUMENTS_BAD);
    args.CreateMutex = NULL;
    /* Application mutex functions: we lock with the OS (CKF_OS_LOCKING_OK lets us); asked to use only the
     * application's, the spec's answer is CKR_CANT_LOCK. We never create threads, so
     * CKF_LIBRARY_CANT_CREATE_OS_THREADS is always satisfied. */
    args.CreateMutex = (CK_CREATEMUTEX)1;
    args.DestroyMutex = (CK_DESTROYMUTEX)1;
    args.LockMutex = (CK_LOCKMUTEX)1;
    args.UnlockMutex = (CK_UNLOCKMUTEX)1;
    expect("C_Initialize with only application locking", f->C_Initialize(&args), CKR_CANT_LOCK);
    args.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS;
    expect("C_Initialize with mutex functions and OS locking", f->C_Initialize(&args), CKR_OK);
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    expect("C_Initialize OS locking", f->C_Initialize(&args), CKR_OK);
    expect("second C_Initialize", f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    expect("C_GetInfo NULL", f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    expect("C_GetSlotList NULL count", f->C_GetSlotList(0, NULL, NULL), CKR_ARGUMENTS_BAD);
    expect("C_Finalize with pReserved", f->C_Finalize(&args), CKR_ARGUMENTS_BAD);
    /* Oracle passes misaligned output pointers. */
    char raw[sizeof(CK_INFO) + 8];
    expect("C_GetInfo misaligned", f->C_GetInfo((CK_INFO_PTR)(raw + 1)), CKR_OK);
    char rawcount[sizeof(CK_ULONG) + 8];
    expect("C_GetSlotList misaligned count", f->C_GetSlotList(0, NULL, (CK_ULONG_PTR)(rawcount + 3)), CKR_OK);
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    expect("C_GetInfo after C_Finalize", f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    return failures;
}

/* Login, find the RSA key pair by label, sign with the length convention, verify, and the error codes around it. */
static int sign_scenario(const char *pin, const char *label, const char *prefix) {
    char name[128];
#define N(s) (snprintf(name, sizeof name, "%s%s", prefix, s), name)
    CK_SESSION_HANDLE s;
    expect(N("C_OpenSession"), f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    check(N("C_Login"), rv == CKR_OK || rv == 0x100 /* USER_ALREADY_LOGGED_IN */);
    CK_OBJECT_HANDLE priv = find(s, CKO_PRIVATE_KEY, label), pub = find(s, CKO_PUBLIC_KEY, label);
    check(N("found key pair"), priv && pub);
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    expect(N("C_Sign without init"), f->C_Sign(s, (CK_BYTE_PTR) "x", 1, NULL, &(CK_ULONG){0}), CKR_OPERATION_NOT_INITIALIZED);
    expect(N("C_SignInit bad key"), f->C_SignInit(s, &m, 0x7777777), CKR_KEY_HANDLE_INVALID);
    expect(N("C_SignInit bad session"), f->C_SignInit(0x7777777, &m, priv), CKR_SESSION_HANDLE_INVALID);
    expect(N("C_SignInit"), f->C_SignInit(s, &m, priv), CKR_OK);
    CK_BYTE data[] = "data to sign", sig[1024];
    CK_ULONG len = 0;
    expect(N("C_Sign length query"), f->C_Sign(s, data, sizeof data, NULL, &len), CKR_OK);
    check(N("length is 256"), len == 256);
    CK_ULONG small = 10;
    expect(N("C_Sign too small"), f->C_Sign(s, data, sizeof data, sig, &small), CKR_BUFFER_TOO_SMALL);
    check(N("too small reports 256"), small == 256);
    len = sizeof sig;
    expect(N("C_Sign"), f->C_Sign(s, data, sizeof data, sig, &len), CKR_OK);
    expect(N("C_Sign after completion"), f->C_Sign(s, data, sizeof data, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    expect(N("C_VerifyInit"), f->C_VerifyInit(s, &m, pub), CKR_OK);
    expect(N("C_Verify"), f->C_Verify(s, data, sizeof data, sig, len), CKR_OK);
    expect(N("C_VerifyInit again"), f->C_VerifyInit(s, &m, pub), CKR_OK);
    expect(N("C_Verify short signature"), f->C_Verify(s, data, sizeof data, sig, 10), CKR_SIGNATURE_LEN_RANGE);
    sig[5] ^= 1;
    expect(N("C_VerifyInit third"), f->C_VerifyInit(s, &m, pub), CKR_OK);
    expect(N("C_Verify tampered"), f->C_Verify(s, data, sizeof data, sig, len), CKR_SIGNATURE_INVALID);
    expect(N("C_CloseSession"), f->C_CloseSession(s), CKR_OK);
#undef N
    return failures;
}

static int cmd_sign(const char *pin, const char *label) {
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    sign_scenario(pin, label, "");
    CK_SESSION_HANDLE s;
    f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s);
    check("private key invisible before login", find(s, CKO_PRIVATE_KEY, label) == 0);
    expect("C_Logout when not logged in", f->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    f->C_Finalize(NULL);
    return failures;
}

/* CKA_ALWAYS_AUTHENTICATE: each signing operation needs its own CKU_CONTEXT_SPECIFIC login. */
static int cmd_always_auth(const char *pin, const char *label) {
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SESSION_HANDLE s;
    f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s);
    expect("context login before user login", f->C_Login(s, 2, (CK_UTF8CHAR_PTR)pin, strlen(pin)),
           CKR_USER_NOT_LOGGED_IN);
    expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CK_OBJECT_HANDLE priv = find(s, CKO_PRIVATE_KEY, label);
    check("found key", priv != 0);
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_BYTE data[] = "x", sig[512];
    CK_ULONG len = sizeof sig;
    expect("context login without an operation", f->C_Login(s, 2, (CK_UTF8CHAR_PTR)pin, strlen(pin)),
           CKR_OPERATION_NOT_INITIALIZED);
    expect("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
    expect("C_Sign without context login", f->C_Sign(s, data, 1, sig, &len), CKR_USER_NOT_LOGGED_IN);
    expect("C_SignInit again", f->C_SignInit(s, &m, priv), CKR_OK);
    expect("context login wrong PIN", f->C_Login(s, 2, (CK_UTF8CHAR_PTR) "wrong-pin", 9), 0xA0UL);
    expect("context login", f->C_Login(s, 2, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    len = sizeof sig;
    expect("C_Sign after context login", f->C_Sign(s, data, 1, sig, &len), CKR_OK);
    expect("C_SignInit third", f->C_SignInit(s, &m, priv), CKR_OK);
    len = sizeof sig;
    expect("next operation needs a new context login", f->C_Sign(s, data, 1, sig, &len), CKR_USER_NOT_LOGGED_IN);
    f->C_Finalize(NULL);
    return failures;
}

static volatile int stop;
static void *busy(void *arg) { /* a call that runs Python each time (C_GetInfo is answered by the loader) */
    CK_ULONG count;
    while (!stop) f->C_GetSlotList(0, NULL, &count);
    return arg;
}

/* The NGINX pattern: the parent initialises and logs in, forks with another thread inside the module; each child
 * must initialise again, then open a session, log in, find and sign. */
static int cmd_fork(const char *pin, const char *label, int rounds) {
    expect("parent C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SESSION_HANDLE s;
    f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s);
    f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    pthread_t thread;
    pthread_create(&thread, NULL, busy, NULL);
    int bad = 0;
    for (int i = 0; i < rounds; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(60); /* a hang is a failure, not a stuck test */
            CK_INFO info;
            int rc = 0;
            rc |= f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED;
            rc |= f->C_Initialize(NULL) != CKR_OK;
            rc |= f->C_GetInfo(&info) != CKR_OK;
            if (i == 0) { /* one child runs the whole signing scenario */
                failures = 0;
                sign_scenario(pin, label, "child ");
                rc |= failures != 0;
            }
            fflush(stdout);
            _exit(rc);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        bad += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    stop = 1;
    pthread_join(thread, NULL);
    check("every child re-initialised and worked", bad == 0);
    expect("parent still works", f->C_CloseSession(s), CKR_OK);
    f->C_Finalize(NULL);
    return failures;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODULE info|table|interface|lifecycle|sign|always-auth|fork [PIN KEY-LABEL TOKEN-LABEL]\n",
                argv[0]);
        return 2;
    }
    void *module = load_module(argv[1]);
    const char *cmd = argv[2];
    token_label = argc == 6 ? argv[5] : "";
    int rc;
    if (!strcmp(cmd, "info")) rc = cmd_info();
    else if (!strcmp(cmd, "table")) rc = cmd_table();
    else if (!strcmp(cmd, "interface")) rc = cmd_interface(module);
    else if (!strcmp(cmd, "lifecycle")) rc = cmd_lifecycle();
    else if (!strcmp(cmd, "sign") && argc == 6) rc = cmd_sign(argv[3], argv[4]);
    else if (!strcmp(cmd, "always-auth") && argc == 6) rc = cmd_always_auth(argv[3], argv[4]);
    else if (!strcmp(cmd, "fork") && argc == 6) rc = cmd_fork(argv[3], argv[4], 50);
    else return 2;
    printf(rc ? "FAILED %d\n" : "ALL OK\n", rc);
    return rc ? 1 : 0;
}
