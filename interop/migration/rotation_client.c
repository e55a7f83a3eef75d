/*
 * A signing service that rotates its credentials without stopping: it signs in a loop with one key, and before
 * each signature re-reads its credentials file ("user:password", as an application re-reads its configuration).
 * When the file names other credentials it logs out and logs in with them, then carries on.
 * Usage: rotation_client MODULE TOKEN KEY-LABEL CREDENTIALS-FILE STOP-FILE
 * Prints "login USER" on each login and "signed N as USER" after each signature that C_Verify accepted; stops when
 * STOP-FILE exists, prints "signatures N failed F" and exits 0 only when F is 0.
 */
#include <unistd.h>

#include "common.h"

static int read_credentials(const char *path, char *out, size_t size) {
    FILE *fp = fopen(path, "r");
    if (!fp || !fgets(out, (int)size, fp)) {
        if (fp) fclose(fp);
        return 1;
    }
    fclose(fp);
    out[strcspn(out, "\r\n")] = 0;
    return 0;
}

/* expect() without the "ok" line: the loop runs thousands of times. */
static void must(const char *name, CK_RV rv) {
    if (rv != CKR_OK) expect(name, rv, CKR_OK);
}

int main(int argc, char **argv) {
    if (argc != 6) return fprintf(stderr, "usage: rotation_client MODULE TOKEN KEY-LABEL CREDENTIALS STOP\n"), 2;
    load_module(argv[1]);
    token_label = argv[2];
    const char *label = argv[3], *credentials_path = argv[4], *stop_path = argv[5];
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SESSION_HANDLE s = 0;
    expect("C_OpenSession", f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    char current[256] = "", wanted[256], user[256] = "";
    unsigned long signatures = 0;
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    while (access(stop_path, F_OK) != 0) {
        if (read_credentials(credentials_path, wanted, sizeof wanted)) {
            check("credentials readable", 0);
            break;
        }
        if (strcmp(wanted, current)) {
            if (current[0]) must("C_Logout", f->C_Logout(s));
            must("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)wanted, strlen(wanted)));
            snprintf(current, sizeof current, "%s", wanted);
            if (strchr(current, ':')) /* the user name; never the password */
                snprintf(user, sizeof user, "%.*s", (int)strcspn(current, ":"), current);
            else
                snprintf(user, sizeof user, "(the token's user PIN)");
            printf("login %s\n", user);
        }
        CK_OBJECT_HANDLE priv = find(s, CKO_PRIVATE_KEY, label), pub = find(s, CKO_PUBLIC_KEY, label);
        unsigned char message[32], signature[128];
        CK_ULONG sig_len = sizeof signature;
        snprintf((char *)message, sizeof message, "message %lu", signatures);
        int failed = failures;
        if (!priv || !pub) check("key visible", 0);
        must("C_SignInit", f->C_SignInit(s, &ecdsa, priv));
        must("C_Sign", f->C_Sign(s, message, sizeof message, signature, &sig_len));
        must("C_VerifyInit", f->C_VerifyInit(s, &ecdsa, pub));
        must("C_Verify", f->C_Verify(s, message, sizeof message, signature, sig_len));
        if (failures != failed) break; /* the first failure is the answer; do not flood the log */
        printf("signed %lu as %s\n", ++signatures, user);
    }
    printf("signatures %lu failed %d\n", signatures, failures);
    f->C_Finalize(NULL);
    return failures ? 1 : 0;
}
