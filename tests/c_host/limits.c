/*
 * Resource bounds seen from a C host: sessions and session objects per process run out with clear codes, and
 * memory stays flat over many sign calls.
 * Usage: limits MODULE PIN TOKEN-LABEL sessions MAX        open sessions until CKR_SESSION_COUNT
 *        limits MODULE PIN TOKEN-LABEL objects MAX         create session objects until CKR_DEVICE_MEMORY
 *        limits MODULE PIN TOKEN-LABEL memory CALLS        CALLS x (C_SignInit + C_Sign), HMAC-SHA256; prints RSS
 */
#include <unistd.h>

#include "common.h"

static CK_BBOOL yes = 1, no = 0;
static CK_ULONG data_class = CKO_DATA, secret_class = CKO_SECRET_KEY, generic = CKK_GENERIC_SECRET;

static long rss_kib(void) {
    long pages = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm || fscanf(statm, "%ld %ld", &pages, &resident) != 2) exit(2);
    fclose(statm);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static CK_SLOT_ID slot; /* looked up once: a store shared with many tests holds hundreds of tokens */

static CK_SESSION_HANDLE open_session(CK_RV *rv) {
    CK_SESSION_HANDLE s = 0;
    *rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    return s;
}

static int sessions(CK_ULONG max) {
    CK_RV rv = CKR_OK;
    CK_ULONG opened = 0;
    CK_SESSION_HANDLE last = 0;
    while (opened <= max + 10) {
        CK_SESSION_HANDLE s = open_session(&rv);
        if (rv != CKR_OK) break;
        last = s;
        opened++;
    }
    printf("opened %lu sessions\n", opened);
    expect("the session after the last allowed is CKR_SESSION_COUNT", rv, CKR_SESSION_COUNT);
    check("exactly the bound were opened", opened == max);
    expect("C_CloseSession", f->C_CloseSession(last), CKR_OK);
    open_session(&rv);
    expect("a closed session makes room for a new one", rv, CKR_OK);
    expect("C_CloseAllSessions", f->C_CloseAllSessions(slot), CKR_OK);
    return failures;
}

static CK_RV data_object(CK_SESSION_HANDLE s, CK_BBOOL token, CK_OBJECT_HANDLE *h) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_TOKEN, &token, 1},
                        {CKA_VALUE, "value", 5}};
    return f->C_CreateObject(s, t, 3, h);
}

static int objects(CK_ULONG max) {
    CK_RV rv = CKR_OK;
    CK_SESSION_HANDLE s = open_session(&rv), other = open_session(&rv);
    CK_OBJECT_HANDLE h = 0, last = 0;
    CK_ULONG made = 0;
    while (made <= max + 10) { /* spread over two sessions: the bound is the process's, not a session's */
        rv = data_object(made % 2 ? other : s, 0, &h);
        if (rv != CKR_OK) break;
        last = h;
        made++;
    }
    printf("created %lu session objects\n", made);
    expect("the object after the last allowed is CKR_DEVICE_MEMORY", rv, CKR_DEVICE_MEMORY);
    check("exactly the bound were created", made == max);
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 16;
    CK_ATTRIBUTE kt[] = {{CKA_VALUE_LEN, &len, sizeof len}, {CKA_PRIVATE, &no, 1}};
    expect("C_GenerateKey of a session key is bounded too", f->C_GenerateKey(s, &gen, kt, 2, &h), CKR_DEVICE_MEMORY);
    expect("a token object is not a session object", data_object(s, 1, &h), CKR_OK);
    expect("C_DestroyObject of the token object", f->C_DestroyObject(s, h), CKR_OK);
    expect("C_DestroyObject of a session object", f->C_DestroyObject(s, last), CKR_OK);
    expect("which makes room for one more", data_object(s, 0, &h), CKR_OK);
    CK_ULONG found = 0;
    CK_OBJECT_HANDLE batch[64];
    f->C_FindObjectsInit(s, NULL, 0);
    for (CK_ULONG n = 64; n == 64;) {
        f->C_FindObjects(s, batch, 64, &n);
        found += n;
    }
    f->C_FindObjectsFinal(s);
    check("C_FindObjects sees them all", found >= max);
    f->C_CloseSession(other);
    expect("closing a session frees its objects", data_object(s, 0, &h), CKR_OK);
    f->C_CloseAllSessions(slot);
    return failures;
}

static int memory(const char *pin, long calls) {
    CK_RV rv;
    CK_SESSION_HANDLE s = open_session(&rv);
    expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CK_BYTE value[32] = "an HMAC key of thirty-two bytes";
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &generic, sizeof generic},
                        {CKA_VALUE, value, sizeof value}, {CKA_SIGN, &yes, 1}};
    CK_OBJECT_HANDLE key = 0;
    expect("HMAC key", f->C_CreateObject(s, t, 4, &key), CKR_OK);
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    CK_BYTE data[64] = {0}, mac[32], first[32];
    long warm = 0, failed = 0;
    for (long i = 0; i < calls; i++) {
        memcpy(data, &i, sizeof i);
        CK_ULONG len = sizeof mac;
        if (f->C_SignInit(s, &hmac, key) != CKR_OK || f->C_Sign(s, data, sizeof data, mac, &len) != CKR_OK) failed++;
        if (i == 0) memcpy(first, mac, sizeof mac);
        if (i == calls / 10) warm = rss_kib(); /* after warm-up: caches, allocator arenas, parsed key */
    }
    long end = rss_kib();
    printf("rss_kib warm=%ld end=%ld calls=%ld\n", warm, end, calls);
    check("every C_SignInit and C_Sign answered CKR_OK", failed == 0);
    CK_ULONG len = sizeof mac;
    memset(data, 0, sizeof data); /* the input of call 0 */
    f->C_SignInit(s, &hmac, key);
    f->C_Sign(s, data, sizeof data, mac, &len);
    check("the MAC of the first input is still the same", memcmp(mac, first, sizeof mac) == 0);
    f->C_CloseAllSessions(slot);
    return failures;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODULE PIN TOKEN-LABEL sessions|objects|memory N\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    (void)find;
    token_label = argv[3];
    if (f->C_Initialize(NULL) != CKR_OK) return 2;
    slot = token_slot();
    long n = atol(argv[5]);
    int failed = !strcmp(argv[4], "sessions")  ? sessions((CK_ULONG)n)
                 : !strcmp(argv[4], "objects") ? objects((CK_ULONG)n)
                                                : memory(argv[2], n);
    f->C_Finalize(NULL);
    printf(failed ? "FAILED %d\n" : "ALL OK\n", failed);
    return failed ? 1 : 0;
}
