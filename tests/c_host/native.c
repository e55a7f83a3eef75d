/*
 * The native data plane (csrc/dataplane.c) seen from a non-Python host: every operation is repeated so that its
 * later rounds run natively (the engine grants a combination at its first Init), and each rule checks that the
 * native rounds keep the rules of the engine.
 * Usage: native MODULE USER-PIN TOKEN-LABEL
 * Prints "ok <rule>: <step>" / "FAIL <rule>: ..." lines, and "value <name> <hex>" lines that
 * tests/test_native_data_plane.py checks with pyca/cryptography and hashlib. The rule another_process_revokes
 * prints "waiting" and reads one line from stdin while the test changes the key from its own process.
 */
#include "common.h"

#define CK_TRUE 1
#define CK_FALSE 0
#define ROUNDS 5

static const char *user_pin;
static const char *rule;
static char line[256];
#define STEP(s) (snprintf(line, sizeof line, "%s: %s", rule, s), line)
#define EXPECT(step, got, want) expect(STEP(step), got, want)
#define CHECK(step, cond) check(STEP(step), cond)

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_ULONG secret_class = CKO_SECRET_KEY;
static CK_BYTE aes_value[32] = "0123456789abcdef0123456789abcdef";
static CK_BYTE hmac_value[32] = "hmac-key-hmac-key-hmac-key-hmac!";
static CK_BYTE message[100] = "the message the native data plane signs, digests and encrypts in its later rounds";
static CK_BYTE p256_params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

static void print_value(const char *name, int round, const CK_BYTE *data, CK_ULONG len) {
    printf("value %s%d ", name, round);
    for (CK_ULONG i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\n");
}

/* A session secret key with a known value: AES keys encrypt, generic secrets (HMAC) sign and verify. */
static CK_OBJECT_HANDLE secret(CK_SESSION_HANDLE s, CK_ULONG type, CK_BYTE *value, CK_ULONG len) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &type, sizeof type},
                        {CKA_VALUE, value, len}, {type == CKK_AES ? CKA_ENCRYPT : CKA_SIGN, &yes, 1},
                        {CKA_VERIFY, &yes, 1}};
    CK_OBJECT_HANDLE h = 0;
    EXPECT("C_CreateObject", f->C_CreateObject(s, t, type == CKK_AES ? 4 : 5, &h), CKR_OK);
    return h;
}

static void key_pair(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type, CK_BBOOL token, const char *label,
                     CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv) {
    CK_MECHANISM mech = {type, NULL, 0};
    CK_ULONG bits = 2048;
    CK_BYTE exponent[] = {1, 0, 1};
    CK_ATTRIBUTE pub_t[] = {{CKA_VERIFY, &yes, 1}, {CKA_TOKEN, &token, 1}, {CKA_LABEL, (void *)label, strlen(label)},
                            {type == CKM_EC_KEY_PAIR_GEN ? CKA_EC_PARAMS : CKA_MODULUS_BITS,
                             type == CKM_EC_KEY_PAIR_GEN ? (void *)p256_params : (void *)&bits,
                             type == CKM_EC_KEY_PAIR_GEN ? sizeof p256_params : sizeof bits},
                            {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent}};
    CK_ATTRIBUTE priv_t[] = {{CKA_SIGN, &yes, 1}, {CKA_TOKEN, &token, 1}, {CKA_LABEL, (void *)label, strlen(label)},
                             {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1}};
    EXPECT("C_GenerateKeyPair",
           f->C_GenerateKeyPair(s, &mech, pub_t, type == CKM_EC_KEY_PAIR_GEN ? 4 : 5, priv_t, 5, pub, priv), CKR_OK);
}

/* One Init + single-part call; returns the CK_RV of the call, fills out/len. */
static CK_RV sign_once(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, CK_BYTE *data, CK_ULONG n,
                       CK_BYTE *out, CK_ULONG *len) {
    CK_RV rv = f->C_SignInit(s, m, k);
    return rv != CKR_OK ? rv : f->C_Sign(s, data, n, out, len);
}

static CK_RV verify_once(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, CK_BYTE *data, CK_ULONG n,
                         CK_BYTE *sig, CK_ULONG sig_len) {
    CK_RV rv = f->C_VerifyInit(s, m, k);
    return rv != CKR_OK ? rv : f->C_Verify(s, data, n, sig, sig_len);
}

/* A P-256 pair that has signed ROUNDS times, so that its later uses run natively; `sig` holds a signature. */
static CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
static void warm_pair(CK_SESSION_HANDLE s, CK_BBOOL token, const char *label, CK_OBJECT_HANDLE *pub,
                      CK_OBJECT_HANDLE *priv, CK_BYTE sig[64]) {
    key_pair(s, CKM_EC_KEY_PAIR_GEN, token, label, pub, priv);
    for (int r = 0; r < ROUNDS; r++) {
        CK_ULONG len = 64;
        EXPECT("warm-up", sign_once(s, &ecdsa, *priv, message, 32, sig, &len), CKR_OK);
    }
}

/* ---- rules ------------------------------------------------------------------------------------------------ */

static void repeated_operations_give_correct_results(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE aes = secret(s, CKK_AES, aes_value, sizeof aes_value);
    CK_OBJECT_HANDLE mac = secret(s, CKK_GENERIC_SECRET, hmac_value, sizeof hmac_value);
    CK_OBJECT_HANDLE ec_pub, ec_priv, rsa_pub, rsa_priv;
    key_pair(s, CKM_EC_KEY_PAIR_GEN, CK_FALSE, "native-ec", &ec_pub, &ec_priv);
    key_pair(s, CKM_RSA_PKCS_KEY_PAIR_GEN, CK_FALSE, "native-rsa", &rsa_pub, &rsa_priv);
    CK_BYTE point[80], modulus[256];
    CK_ATTRIBUTE ec_point = {CKA_EC_POINT, point, sizeof point}, rsa_mod = {CKA_MODULUS, modulus, sizeof modulus};
    EXPECT("EC point", f->C_GetAttributeValue(s, ec_pub, &ec_point, 1), CKR_OK);
    EXPECT("RSA modulus", f->C_GetAttributeValue(s, rsa_pub, &rsa_mod, 1), CKR_OK);
    print_value("ec_point", 0, point, ec_point.ulValueLen);
    print_value("rsa_modulus", 0, modulus, rsa_mod.ulValueLen);

    CK_BYTE iv[16] = "iv-iv-iv-iv-iv-i", aad[] = "header";
    CK_GCM_PARAMS gcm = {iv, 12, 96, aad, sizeof aad - 1, 128};
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM m_gcm = {CKM_AES_GCM, &gcm, sizeof gcm}, m_cbc = {CKM_AES_CBC_PAD, iv, 16},
                 m_sha = {CKM_SHA256, NULL, 0}, m_hmac = {CKM_SHA256_HMAC, NULL, 0}, m_ecdsa = {CKM_ECDSA, NULL, 0},
                 m_rsa = {CKM_SHA256_RSA_PKCS, NULL, 0}, m_pss = {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss},
                 m_ecdsa_sha = {CKM_ECDSA_SHA256, NULL, 0};
    for (int r = 0; r < ROUNDS; r++) {
        CK_BYTE out[512];
        CK_ULONG len, n = 10 + (CK_ULONG)r * 20; /* a different message each round */
        iv[0] = (CK_BYTE)('a' + r);
        len = sizeof out;
        EXPECT("C_EncryptInit GCM", f->C_EncryptInit(s, &m_gcm, aes), CKR_OK);
        EXPECT("C_Encrypt GCM", f->C_Encrypt(s, message, n, out, &len), CKR_OK);
        CHECK("GCM output length", len == n + 16);
        print_value("gcm", r, out, len);
        len = sizeof out;
        EXPECT("C_EncryptInit CBC-PAD", f->C_EncryptInit(s, &m_cbc, aes), CKR_OK);
        EXPECT("C_Encrypt CBC-PAD", f->C_Encrypt(s, message, n, out, &len), CKR_OK);
        print_value("cbc", r, out, len);
        len = sizeof out;
        EXPECT("C_DigestInit", f->C_DigestInit(s, &m_sha), CKR_OK);
        EXPECT("C_Digest", f->C_Digest(s, message, n, out, &len), CKR_OK);
        print_value("sha256_", r, out, len);
        len = sizeof out;
        EXPECT("HMAC sign", sign_once(s, &m_hmac, mac, message, n, out, &len), CKR_OK);
        print_value("hmac", r, out, len);
        EXPECT("HMAC verify", verify_once(s, &m_hmac, mac, message, n, out, len), CKR_OK);
        out[0] ^= 1;
        EXPECT("HMAC verify tampered", verify_once(s, &m_hmac, mac, message, n, out, len), CKR_SIGNATURE_INVALID);
        struct { CK_MECHANISM *m; CK_OBJECT_HANDLE priv, pub; const char *name; } sigs[] = {
            {&m_ecdsa, ec_priv, ec_pub, "ecdsa"}, {&m_ecdsa_sha, ec_priv, ec_pub, "ecdsa_sha256_"},
            {&m_rsa, rsa_priv, rsa_pub, "rsa"}, {&m_pss, rsa_priv, rsa_pub, "pss"}};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            CK_ULONG input = sigs[i].m == &m_ecdsa ? 32 : n; /* CKM_ECDSA signs a digest-sized input */
            len = sizeof out;
            EXPECT("sign", sign_once(s, sigs[i].m, sigs[i].priv, message, input, out, &len), CKR_OK);
            print_value(sigs[i].name, r, out, len);
            EXPECT("verify", verify_once(s, sigs[i].m, sigs[i].pub, message, input, out, len), CKR_OK);
            out[len - 1] ^= 1;
            EXPECT("verify tampered", verify_once(s, sigs[i].m, sigs[i].pub, message, input, out, len),
                   CKR_SIGNATURE_INVALID);
        }
        CK_BYTE random[64] = {0};
        EXPECT("C_GenerateRandom", f->C_GenerateRandom(s, random, sizeof random), CKR_OK);
        print_value("random", r, random, sizeof random);
    }
}

static void length_convention_is_kept(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    key_pair(s, CKM_EC_KEY_PAIR_GEN, CK_FALSE, "native-len", &pub, &priv);
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE out[128];
    CK_ULONG len;
    for (int r = 0; r < ROUNDS; r++) {
        len = 0;
        EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
        EXPECT("length query", f->C_Sign(s, message, 32, NULL, &len), CKR_OK);
        CHECK("length query says 64", len == 64);
        len = 10;
        EXPECT("too small", f->C_Sign(s, message, 32, out, &len), CKR_BUFFER_TOO_SMALL);
        CHECK("too small says 64", len == 64);
        len = sizeof out;
        EXPECT("C_Sign", f->C_Sign(s, message, 32, out, &len), CKR_OK);
        CHECK("signature of 64 bytes", len == 64);
        EXPECT("signature verifies", verify_once(s, &m, pub, message, 32, out, len), CKR_OK);
        EXPECT("C_Sign after the end", f->C_Sign(s, message, 32, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    }
}

static void unusual_calls_get_the_engines_codes(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    CK_MECHANISM m = ecdsa;
    CK_BYTE out[128], sig[64];
    CK_ULONG len = sizeof sig;
    warm_pair(s, CK_FALSE, "native-odd", &pub, &priv, sig);
    EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
    EXPECT("C_SignInit again", f->C_SignInit(s, &m, priv), CKR_OPERATION_ACTIVE);
    EXPECT("NULL pulSignatureLen", f->C_Sign(s, message, 32, out, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("ended by the error", f->C_Sign(s, message, 32, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
    EXPECT("empty input", f->C_Sign(s, message, 0, out, &len), CKR_DATA_LEN_RANGE);
    EXPECT("C_VerifyInit", f->C_VerifyInit(s, &m, pub), CKR_OK);
    EXPECT("short signature", f->C_Verify(s, message, 32, sig, 63), CKR_SIGNATURE_LEN_RANGE);
    /* multi-part after a native Init: the operation goes back to the engine and works */
    len = sizeof out;
    EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
    EXPECT("C_SignUpdate", f->C_SignUpdate(s, message, 32), CKR_OK);
    EXPECT("C_SignFinal", f->C_SignFinal(s, out, &len), CKR_OK);
    EXPECT("multi-part signature verifies", verify_once(s, &m, pub, message, 32, out, len), CKR_OK);
    /* an Update after a single-part length query is CKR_OPERATION_ACTIVE and ends the operation (section 5.2) */
    EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
    EXPECT("length query", f->C_Sign(s, message, 32, NULL, &len), CKR_OK);
    EXPECT("C_SignUpdate after it", f->C_SignUpdate(s, message, 32), CKR_OPERATION_ACTIVE);
    EXPECT("ended", f->C_SignFinal(s, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    /* a GCM IV the native code does not take (16 bytes) still works, through the engine */
    CK_OBJECT_HANDLE aes = secret(s, CKK_AES, aes_value, sizeof aes_value);
    CK_BYTE iv[16] = "sixteen-byte-iv!";
    CK_GCM_PARAMS gcm = {iv, 16, 128, NULL, 0, 128};
    CK_MECHANISM m_gcm = {CKM_AES_GCM, &gcm, sizeof gcm};
    for (int r = 0; r < 3; r++) {
        len = sizeof out;
        EXPECT("16-byte IV GCM", f->C_EncryptInit(s, &m_gcm, aes), CKR_OK);
        EXPECT("C_Encrypt", f->C_Encrypt(s, message, 16, out, &len), CKR_OK);
    }
    print_value("gcm16_", 0, out, len);
}

static void changes_to_the_key_are_seen_at_the_next_init(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    CK_MECHANISM m = ecdsa;
    CK_BYTE sig[64];
    CK_ULONG len = sizeof sig;
    warm_pair(s, CK_TRUE, "native-revoke", &pub, &priv, sig);
    CK_ATTRIBUTE no_sign = {CKA_SIGN, &no, 1};
    EXPECT("CKA_SIGN to FALSE", f->C_SetAttributeValue(s, priv, &no_sign, 1), CKR_OK);
    EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    for (int r = 0; r < ROUNDS; r++) EXPECT("verify warm-up", verify_once(s, &m, pub, message, 32, sig, len), CKR_OK);
    EXPECT("C_DestroyObject", f->C_DestroyObject(s, pub), CKR_OK);
    EXPECT("C_VerifyInit destroyed key", f->C_VerifyInit(s, &m, pub), CKR_KEY_HANDLE_INVALID);
    f->C_DestroyObject(s, priv);
}

static void logout_and_close_are_seen_at_once(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    key_pair(s, CKM_EC_KEY_PAIR_GEN, CK_TRUE, "native-logout", &pub, &priv);
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE sig[64], random[16];
    CK_ULONG len = sizeof sig;
    CK_SESSION_INFO info;
    for (int r = 0; r < ROUNDS; r++) {
        EXPECT("warm-up", sign_once(s, &m, priv, message, 32, sig, &len), CKR_OK), len = sizeof sig;
        EXPECT("C_GetSessionInfo", f->C_GetSessionInfo(s, &info), CKR_OK);
        CHECK("logged in: RW user functions", info.state == CKS_RW_USER_FUNCTIONS);
        EXPECT("C_GenerateRandom", f->C_GenerateRandom(s, random, sizeof random), CKR_OK);
    }
    EXPECT("a native Init before logout", f->C_SignInit(s, &m, priv), CKR_OK);
    EXPECT("C_Logout", f->C_Logout(s), CKR_OK);
    EXPECT("C_GetSessionInfo", f->C_GetSessionInfo(s, &info), CKR_OK);
    CHECK("logged out: RW public session", info.state == CKS_RW_PUBLIC_SESSION);
    /* v3.0 C_Logout: an operation already started "may or may not" continue; the engine's rule (it continues)
     * must hold for one the data plane started too */
    len = sizeof sig;
    EXPECT("C_Sign of the operation started before", f->C_Sign(s, message, 32, sig, &len), CKR_OK);
    EXPECT("C_SignInit logged out", f->C_SignInit(s, &m, priv), CKR_KEY_HANDLE_INVALID);
    EXPECT("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);
    f->C_DestroyObject(s, priv);
    f->C_DestroyObject(s, pub);
    CK_SESSION_HANDLE other = 0;
    EXPECT("C_OpenSession", f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &other), CKR_OK);
    for (int r = 0; r < ROUNDS; r++) EXPECT("C_GenerateRandom", f->C_GenerateRandom(other, random, sizeof random), CKR_OK);
    EXPECT("C_CloseSession", f->C_CloseSession(other), CKR_OK);
    EXPECT("C_GenerateRandom closed", f->C_GenerateRandom(other, random, sizeof random), CKR_SESSION_HANDLE_INVALID);
    EXPECT("C_GetSessionInfo closed", f->C_GetSessionInfo(other, &info), CKR_SESSION_HANDLE_INVALID);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    EXPECT("C_DigestInit closed", f->C_DigestInit(other, &sha), CKR_SESSION_HANDLE_INVALID);
}

static void keys_checked_at_every_use_never_run_natively(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    key_pair(s, CKM_EC_KEY_PAIR_GEN, CK_FALSE, "native-always-auth", &pub, &priv);
    CK_ATTRIBUTE always = {CKA_ALWAYS_AUTHENTICATE, &yes, 1};
    EXPECT("CKA_ALWAYS_AUTHENTICATE", f->C_SetAttributeValue(s, priv, &always, 1), CKR_OK);
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE sig[64];
    for (int r = 0; r < ROUNDS; r++) {
        CK_ULONG len = sizeof sig;
        EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
        EXPECT("C_Sign without a context login", f->C_Sign(s, message, 32, sig, &len), CKR_USER_NOT_LOGGED_IN);
    }
    CK_ULONG len = sizeof sig;
    EXPECT("C_SignInit", f->C_SignInit(s, &m, priv), CKR_OK);
    EXPECT("context login", f->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);
    EXPECT("C_Sign after it", f->C_Sign(s, message, 32, sig, &len), CKR_OK);
}

static void another_process_revokes(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    CK_MECHANISM m = ecdsa;
    CK_BYTE sig[64];
    warm_pair(s, CK_TRUE, "native-shared", &pub, &priv, sig);
    printf("waiting\n");
    char reply[16];
    if (!fgets(reply, sizeof reply, stdin)) reply[0] = 0;
    CHECK("the test changed the key", strncmp(reply, "changed", 7) == 0);
    EXPECT("C_SignInit after CKA_SIGN=FALSE elsewhere", f->C_SignInit(s, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
}

static const struct {
    const char *name;
    void (*fn)(CK_SESSION_HANDLE);
} rules[] = {
#define RULE(fn) {#fn, fn}
    RULE(repeated_operations_give_correct_results),
    RULE(length_convention_is_kept),
    RULE(unusual_calls_get_the_engines_codes),
    RULE(changes_to_the_key_are_seen_at_the_next_init),
    RULE(logout_and_close_are_seen_at_once),
    RULE(keys_checked_at_every_use_never_run_natively),
    RULE(another_process_revokes),
};

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODULE USER-PIN TOKEN-LABEL\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    user_pin = argv[2];
    token_label = argv[3];
    if (f->C_Initialize(NULL) != CKR_OK) return 2;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        rule = rules[i].name;
        CK_SESSION_HANDLE s = 0;
        EXPECT("C_OpenSession", f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
               CKR_OK);
        EXPECT("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);
        rules[i].fn(s);
        f->C_CloseSession(s);
    }
    f->C_Finalize(NULL);
    printf(failures ? "FAILED %d\n" : "ALL OK\n", failures);
    return failures ? 1 : 0;
}
