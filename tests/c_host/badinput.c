/*
 * Hostile and careless input at the C boundary, one RULE per rule: NULL and dangling-length pointers, lengths of 0
 * and of absurd size, stale or foreign handles, wrong object classes, malformed mechanism parameters, bad attribute
 * templates, UTF-8 edge cases in PINs and labels. Every call must answer the spec's CKR_* code and the host must
 * live on: the last rule checks the module still works after all of it.
 * Usage: badinput MODULE USER-PIN SO-PIN TOKEN-LABEL
 * Prints "ok <rule>: <step>" / "FAIL <rule>: <step>: ..." lines; tests/test_c_boundary_bad_input.py turns every
 * RULE into its own pytest test.
 */
#include "common.h"

static const char *user_pin, *so_pin;
static const char *rule; /* the rule being checked: prefixes every line */
static char line[256];
#define STEP(s) (snprintf(line, sizeof line, "%s: %s", rule, s), line)
#define EXPECT(step, got, want) expect(STEP(step), got, want)
#define CHECK(step, cond) check(STEP(step), cond)

#define HUGE_LENGTH ((CK_ULONG)-1)
#define TERA (1UL << 40)
#define BEYOND_LIMIT ((CK_ULONG)1 << 31) /* beyond the module's 256 MiB limit, below what malloc refuses */
static const CK_ULONG absurd[] = {HUGE_LENGTH, TERA, BEYOND_LIMIT};
#define N_ABSURD (sizeof absurd / sizeof absurd[0])

static CK_BBOOL yes = 1;
static CK_ULONG secret_class = CKO_SECRET_KEY, data_class = CKO_DATA, aes_type = CKK_AES;
static CK_BYTE key_bytes[16] = "0123456789abcdef";
static CK_BYTE iv[16] = "fedcba9876543210";
static CK_BYTE buf[512];
static CK_MECHANISM cbc = {CKM_AES_CBC, iv, sizeof iv};
static CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
static CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
static CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};

static CK_SESSION_HANDLE open_session(void) {
    CK_SESSION_HANDLE s = 0;
    f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    return s;
}

static CK_OBJECT_HANDLE secret_key(CK_SESSION_HANDLE s, CK_ULONG type) {
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE, key_bytes, sizeof key_bytes},        {CKA_EXTRACTABLE, &yes, 1},
    };
    CK_OBJECT_HANDLE h = 0;
    CK_RV rv = f->C_CreateObject(s, t, 4, &h);
    if (rv != CKR_OK) printf("  (creating a test key failed: 0x%lx)\n", rv);
    return h;
}

static CK_OBJECT_HANDLE data_object(CK_SESSION_HANDLE s) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_VALUE, "payload", 7}};
    CK_OBJECT_HANDLE h = 0;
    f->C_CreateObject(s, t, 2, &h);
    return h;
}

static void ec_pair(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv) {
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, p256, sizeof p256}};
    CK_ATTRIBUTE kt[] = {{CKA_DERIVE, &yes, 1}};
    CK_RV rv = f->C_GenerateKeyPair(s, &gen, pt, 1, kt, 1, pub, priv);
    if (rv != CKR_OK) printf("  (EC key pair generation failed: 0x%lx)\n", rv);
}

static void log_in(CK_SESSION_HANDLE s) {
    EXPECT("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);
}

/* An operation that an error must have ended: a fresh Init succeeds (then is ended again). */
static void expect_ended(const char *step, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k) {
    EXPECT(step, f->C_EncryptInit(s, &cbc, k), CKR_OK);
    CK_ULONG len = sizeof buf;
    f->C_Encrypt(s, buf, 16, buf, &len);
}

/* ---- NULL pointers ------------------------------------------------------------------------------------------- */

static void null_where_a_pointer_is_required_is_arguments_bad(CK_SESSION_HANDLE s) {
    CK_SLOT_ID slot = token_slot();
    CK_OBJECT_HANDLE k = secret_key(s, CKK_AES), h;
    CK_ULONG n = 1;
    EXPECT("C_GetSlotList pulCount", f->C_GetSlotList(0, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GetSlotInfo pInfo", f->C_GetSlotInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GetTokenInfo pInfo", f->C_GetTokenInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GetMechanismList pulCount", f->C_GetMechanismList(slot, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GetMechanismInfo pInfo", f->C_GetMechanismInfo(slot, CKM_AES_CBC, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_OpenSession phSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT("C_GetSessionInfo pInfo", f->C_GetSessionInfo(s, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_CreateObject phObject", f->C_CreateObject(s, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_CreateObject pTemplate with a count", f->C_CreateObject(s, NULL, 3, &h), CKR_ARGUMENTS_BAD);
    EXPECT("C_CopyObject phNewObject", f->C_CopyObject(s, k, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GetObjectSize pulSize", f->C_GetObjectSize(s, k, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GetAttributeValue pTemplate", f->C_GetAttributeValue(s, k, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT("C_SetAttributeValue pTemplate", f->C_SetAttributeValue(s, k, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT("C_FindObjectsInit pTemplate", f->C_FindObjectsInit(s, NULL, 2), CKR_ARGUMENTS_BAD);
    EXPECT("C_FindObjectsInit", f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT("C_FindObjects pulObjectCount", f->C_FindObjects(s, &h, 1, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_FindObjects phObject", f->C_FindObjects(s, NULL, 1, &n), CKR_ARGUMENTS_BAD);
    f->C_FindObjectsFinal(s);
    EXPECT("C_EncryptInit pMechanism", f->C_EncryptInit(s, NULL, k), CKR_ARGUMENTS_BAD);
    EXPECT("C_DigestInit pMechanism", f->C_DigestInit(s, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GenerateKey pMechanism", f->C_GenerateKey(s, NULL, NULL, 0, &h), CKR_ARGUMENTS_BAD);
    EXPECT("C_GenerateKey phKey", f->C_GenerateKey(s, &cbc, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GenerateKeyPair phPrivateKey", f->C_GenerateKeyPair(s, &cbc, NULL, 0, NULL, 0, &h, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT("C_WrapKey pulWrappedKeyLen", f->C_WrapKey(s, &kw, k, k, buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_UnwrapKey phKey", f->C_UnwrapKey(s, &cbc, k, buf, 16, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_DeriveKey phKey", f->C_DeriveKey(s, &cbc, k, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("C_GenerateRandom pRandomData", f->C_GenerateRandom(s, NULL, 8), CKR_ARGUMENTS_BAD);
    EXPECT("C_Login pPin", f->C_Login(s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    EXPECT("C_SetPIN pNewPin", f->C_SetPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin), NULL, 4),
           CKR_ARGUMENTS_BAD);
    EXPECT("C_InitToken pLabel", f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), NULL),
           CKR_ARGUMENTS_BAD);
    /* Output length pointers of the crypto functions: the operation ends like on any other error. */
    f->C_EncryptInit(s, &cbc, k);
    EXPECT("C_Encrypt pulEncryptedDataLen", f->C_Encrypt(s, buf, 16, buf, NULL), CKR_ARGUMENTS_BAD);
    expect_ended("the failed C_Encrypt ended the operation", s, k);
    f->C_DigestInit(s, &sha256);
    EXPECT("C_DigestFinal pulDigestLen", f->C_DigestFinal(s, buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT("the failed C_DigestFinal ended the digest", f->C_DigestInit(s, &sha256), CKR_OK);
    EXPECT("C_Digest pulDigestLen", f->C_Digest(s, buf, 1, buf, NULL), CKR_ARGUMENTS_BAD);
}

static void null_where_the_spec_allows_it_is_accepted(CK_SESSION_HANDLE s) {
    CK_SLOT_ID slot = token_slot();
    CK_ULONG n = 0;
    EXPECT("C_GetSlotList NULL list is a length query", f->C_GetSlotList(1, NULL, &n), CKR_OK);
    CHECK("length query counted slots", n >= 1);
    n = 0;
    EXPECT("C_GetMechanismList NULL list", f->C_GetMechanismList(slot, NULL, &n), CKR_OK);
    CHECK("length query counted mechanisms", n >= 10);
    CK_SESSION_HANDLE other = 0;
    EXPECT("C_OpenSession NULL pApplication and Notify", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
           &other), CKR_OK);
    f->C_CloseSession(other);
    EXPECT("C_FindObjectsInit NULL template, count 0", f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT("C_FindObjects max 0 with NULL array", f->C_FindObjects(s, NULL, 0, &n), CKR_OK);
    CHECK("nothing returned for max 0", n == 0);
    f->C_FindObjectsFinal(s);
    CK_OBJECT_HANDLE k = secret_key(s, CKK_AES);
    EXPECT("C_GetAttributeValue NULL template, count 0", f->C_GetAttributeValue(s, k, NULL, 0), CKR_OK);
    EXPECT("C_GenerateRandom NULL, length 0", f->C_GenerateRandom(s, NULL, 0), CKR_OK);
    f->C_DigestInit(s, &sha256);
    n = sizeof buf;
    EXPECT("C_Digest NULL data of length 0 (the empty message)", f->C_Digest(s, NULL, 0, buf, &n), CKR_OK);
    CHECK("SHA-256 of nothing", n == 32 && buf[0] == 0xe3 && buf[1] == 0xb0);
    f->C_EncryptInit(s, &cbc, k);
    n = 0;
    EXPECT("C_Encrypt NULL output is a length query", f->C_Encrypt(s, buf, 32, NULL, &n), CKR_OK);
    CHECK("length query answers 32", n == 32);
    n = sizeof buf;
    EXPECT("the operation is still active", f->C_Encrypt(s, buf, 32, buf, &n), CKR_OK);
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, NULL, 0}};
    EXPECT("C_GetAttributeValue NULL pValue is a size query", f->C_GetAttributeValue(s, k, t, 1), CKR_OK);
    CHECK("size of CKA_VALUE_LEN", t[0].ulValueLen == sizeof(CK_ULONG));
}

static void null_with_a_nonzero_length_is_arguments_bad(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = secret_key(s, CKK_AES), h;
    CK_ULONG n = sizeof buf;
    f->C_EncryptInit(s, &cbc, k);
    EXPECT("C_Encrypt pData NULL, length 16", f->C_Encrypt(s, NULL, 16, buf, &n), CKR_ARGUMENTS_BAD);
    expect_ended("the failed C_Encrypt ended the operation", s, k);
    f->C_EncryptInit(s, &cbc, k);
    n = sizeof buf;
    EXPECT("C_EncryptUpdate pPart NULL, length 16", f->C_EncryptUpdate(s, NULL, 16, buf, &n), CKR_ARGUMENTS_BAD);
    expect_ended("the failed C_EncryptUpdate ended the operation", s, k);
    f->C_DigestInit(s, &sha256);
    EXPECT("C_DigestUpdate pPart NULL, length 5", f->C_DigestUpdate(s, NULL, 5), CKR_ARGUMENTS_BAD);
    EXPECT("the failed C_DigestUpdate ended the digest", f->C_DigestInit(s, &sha256), CKR_OK);
    n = sizeof buf;
    f->C_Digest(s, buf, 1, buf, &n);
    f->C_SignInit(s, &hmac, secret_key(s, CKK_GENERIC_SECRET));
    EXPECT("C_SignUpdate pPart NULL, length 5", f->C_SignUpdate(s, NULL, 5), CKR_ARGUMENTS_BAD);
    CK_OBJECT_HANDLE mac_key = secret_key(s, CKK_GENERIC_SECRET);
    EXPECT("the failed C_SignUpdate ended the signature", f->C_SignInit(s, &hmac, mac_key), CKR_OK);
    n = sizeof buf;
    f->C_Sign(s, buf, 1, buf, &n);
    f->C_VerifyInit(s, &hmac, mac_key);
    EXPECT("C_Verify pSignature NULL, length 32", f->C_Verify(s, buf, 1, NULL, 32), CKR_ARGUMENTS_BAD);
    EXPECT("the failed C_Verify ended the verification", f->C_VerifyInit(s, &hmac, mac_key), CKR_OK);
    EXPECT("C_VerifyFinal pSignature NULL, length 32", f->C_VerifyFinal(s, NULL, 32), CKR_ARGUMENTS_BAD);
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_LABEL, NULL, 9}};
    EXPECT("attribute pValue NULL, length 9", f->C_CreateObject(s, t, 2, &h), CKR_ARGUMENTS_BAD);
    EXPECT("C_UnwrapKey pWrappedKey NULL", f->C_UnwrapKey(s, &cbc, k, NULL, 16, NULL, 0, &h), CKR_ARGUMENTS_BAD);
    EXPECT("C_SeedRandom pSeed NULL, length 8", f->C_SeedRandom(s, NULL, 8), CKR_ARGUMENTS_BAD);
}

/* ---- lengths ------------------------------------------------------------------------------------------------- */

static void zero_lengths_get_their_codes(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = secret_key(s, CKK_AES), mac_key = secret_key(s, CKK_GENERIC_SECRET), h;
    CK_ULONG n = sizeof buf;
    f->C_EncryptInit(s, &cbc, k);
    EXPECT("AES-CBC of 0 bytes", f->C_Encrypt(s, buf, 0, buf, &n), CKR_OK);
    CHECK("gives 0 bytes", n == 0);
    f->C_SignInit(s, &hmac, mac_key);
    n = sizeof buf;
    EXPECT("HMAC of 0 bytes", f->C_Sign(s, buf, 0, buf, &n), CKR_OK);
    CHECK("gives a 32-byte MAC", n == 32);
    f->C_VerifyInit(s, &hmac, mac_key);
    EXPECT("a signature of 0 bytes", f->C_Verify(s, buf, 0, buf, 0), CKR_SIGNATURE_LEN_RANGE);
    CK_MECHANISM no_iv = {CKM_AES_CBC, iv, 0};
    EXPECT("an IV of 0 bytes", f->C_EncryptInit(s, &no_iv, k), CKR_MECHANISM_PARAM_INVALID);
    CK_ATTRIBUTE empty_key[] = {{CKA_CLASS, &secret_class, sizeof secret_class},
                                {CKA_KEY_TYPE, &aes_type, sizeof aes_type}, {CKA_VALUE, key_bytes, 0}};
    EXPECT("an AES key of 0 bytes", f->C_CreateObject(s, empty_key, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE empty_label[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_LABEL, "", 0}};
    EXPECT("an empty label", f->C_CreateObject(s, empty_label, 2, &h), CKR_OK);
    EXPECT("C_SetPIN to a PIN of 0 bytes", f->C_SetPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin),
           (CK_UTF8CHAR_PTR) "", 0), CKR_PIN_LEN_RANGE);
    EXPECT("C_GenerateRandom of 0 bytes", f->C_GenerateRandom(s, buf, 0), CKR_OK);
    f->C_Logout(s);
    EXPECT("C_Login with a PIN of 0 bytes", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "", 0), CKR_PIN_INCORRECT);
    log_in(s);
}

static void absurd_lengths_are_refused_before_reading(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = secret_key(s, CKK_AES), mac_key = secret_key(s, CKK_GENERIC_SECRET), h;
    for (size_t i = 0; i < N_ABSURD; i++) {
        CK_ULONG len = absurd[i], n = sizeof buf;
        printf("  length 0x%lx\n", len);
        f->C_EncryptInit(s, &cbc, k);
        EXPECT("C_Encrypt data", f->C_Encrypt(s, buf, len, buf, &n), CKR_DATA_LEN_RANGE);
        expect_ended("the failed C_Encrypt ended the operation", s, k);
        f->C_DecryptInit(s, &cbc, k);
        n = sizeof buf;
        EXPECT("C_DecryptUpdate data", f->C_DecryptUpdate(s, buf, len, buf, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
        f->C_DigestInit(s, &sha256);
        EXPECT("C_DigestUpdate data", f->C_DigestUpdate(s, buf, len), CKR_DATA_LEN_RANGE);
        f->C_SignInit(s, &hmac, mac_key);
        n = sizeof buf;
        EXPECT("C_Sign data", f->C_Sign(s, buf, len, buf, &n), CKR_DATA_LEN_RANGE);
        f->C_VerifyInit(s, &hmac, mac_key);
        EXPECT("C_Verify signature", f->C_Verify(s, buf, 1, buf, len), CKR_SIGNATURE_LEN_RANGE);
        EXPECT("C_SetPIN new PIN", f->C_SetPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin), buf, len),
               CKR_PIN_LEN_RANGE);
        CK_ATTRIBUTE value[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_VALUE, buf, len}};
        EXPECT("attribute value", f->C_CreateObject(s, value, 2, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT("template count", f->C_CreateObject(s, value, len, &h), CKR_ARGUMENTS_BAD);
        EXPECT("C_GetAttributeValue count", f->C_GetAttributeValue(s, k, value, len), CKR_ARGUMENTS_BAD);
        EXPECT("C_FindObjectsInit count", f->C_FindObjectsInit(s, value, len), CKR_ARGUMENTS_BAD);
        CK_MECHANISM long_iv = {CKM_AES_CBC, iv, len};
        EXPECT("mechanism parameter", f->C_EncryptInit(s, &long_iv, k), CKR_MECHANISM_PARAM_INVALID);
        CK_GCM_PARAMS gcm = {iv, 12, 96, buf, len, 128};
        CK_MECHANISM gcm_mech = {CKM_AES_GCM, &gcm, sizeof gcm};
        EXPECT("GCM AAD length", f->C_EncryptInit(s, &gcm_mech, k), CKR_MECHANISM_PARAM_INVALID);
        EXPECT("C_UnwrapKey wrapped key", f->C_UnwrapKey(s, &cbc, k, buf, len, NULL, 0, &h),
               CKR_WRAPPED_KEY_LEN_RANGE);
        EXPECT("C_GenerateRandom length", f->C_GenerateRandom(s, buf, len), CKR_ARGUMENTS_BAD);
        EXPECT("C_SeedRandom length", f->C_SeedRandom(s, buf, len), CKR_ARGUMENTS_BAD);
    }
    f->C_Logout(s);
    for (size_t i = 0; i < N_ABSURD; i++) EXPECT("C_Login PIN", f->C_Login(s, CKU_USER, buf, absurd[i]),
                                                 CKR_PIN_INCORRECT);
    log_in(s);
}

/* ---- handles ------------------------------------------------------------------------------------------------- */

static void invalid_slot_ids_are_slot_id_invalid(CK_SESSION_HANDLE s) {
    const CK_SLOT_ID bad[] = {0xdead, (CK_SLOT_ID)-1};
    for (size_t i = 0; i < 2; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        CK_MECHANISM_INFO mi;
        CK_ULONG n = 0;
        CK_SESSION_HANDLE h;
        EXPECT("C_GetSlotInfo", f->C_GetSlotInfo(bad[i], &si), CKR_SLOT_ID_INVALID);
        EXPECT("C_GetTokenInfo", f->C_GetTokenInfo(bad[i], &ti), CKR_SLOT_ID_INVALID);
        EXPECT("C_GetMechanismList", f->C_GetMechanismList(bad[i], NULL, &n), CKR_SLOT_ID_INVALID);
        EXPECT("C_GetMechanismInfo", f->C_GetMechanismInfo(bad[i], CKM_AES_CBC, &mi), CKR_SLOT_ID_INVALID);
        EXPECT("C_OpenSession", f->C_OpenSession(bad[i], CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_SLOT_ID_INVALID);
        EXPECT("C_CloseAllSessions", f->C_CloseAllSessions(bad[i]), CKR_SLOT_ID_INVALID);
        EXPECT("C_InitToken", f->C_InitToken(bad[i], (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin),
               (CK_UTF8CHAR_PTR) "x                               "), CKR_SLOT_ID_INVALID);
    }
    CK_MECHANISM_INFO mi;
    EXPECT("unknown mechanism", f->C_GetMechanismInfo(token_slot(), 0x7fff0001UL, &mi), CKR_MECHANISM_INVALID);
}

/* Every session-taking function answers CKR_SESSION_HANDLE_INVALID for a handle that is not (or no longer) open. */
static void expect_session_invalid(CK_SESSION_HANDLE bad) {
    CK_SESSION_INFO info;
    CK_OBJECT_HANDLE h;
    CK_ULONG n = sizeof buf;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}};
    const CK_RV want = CKR_SESSION_HANDLE_INVALID;
    EXPECT("C_GetSessionInfo", f->C_GetSessionInfo(bad, &info), want);
    EXPECT("C_Login", f->C_Login(bad, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), want);
    EXPECT("C_Logout", f->C_Logout(bad), want);
    EXPECT("C_CreateObject", f->C_CreateObject(bad, t, 1, &h), want);
    EXPECT("C_GetAttributeValue", f->C_GetAttributeValue(bad, 1, t, 1), want);
    EXPECT("C_FindObjectsInit", f->C_FindObjectsInit(bad, t, 1), want);
    EXPECT("C_FindObjects", f->C_FindObjects(bad, &h, 1, &n), want);
    EXPECT("C_EncryptInit", f->C_EncryptInit(bad, &cbc, 1), want);
    EXPECT("C_Encrypt", f->C_Encrypt(bad, buf, 16, buf, &n), want);
    EXPECT("C_DigestInit", f->C_DigestInit(bad, &sha256), want);
    EXPECT("C_SignUpdate", f->C_SignUpdate(bad, buf, 1), want);
    EXPECT("C_GenerateKey", f->C_GenerateKey(bad, &cbc, t, 1, &h), want);
    EXPECT("C_GenerateRandom", f->C_GenerateRandom(bad, buf, 4), want);
    EXPECT("C_SetPIN", f->C_SetPIN(bad, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin), (CK_UTF8CHAR_PTR)user_pin,
           strlen(user_pin)), want);
    EXPECT("C_CloseSession", f->C_CloseSession(bad), want);
}

static void unknown_and_closed_sessions_are_session_handle_invalid(CK_SESSION_HANDLE s) {
    expect_session_invalid(0);
    expect_session_invalid(0x7fffffffUL);
    expect_session_invalid((CK_SESSION_HANDLE)-1);
    CK_SESSION_HANDLE closed = open_session();
    f->C_CloseSession(closed);
    expect_session_invalid(closed);
    CK_SESSION_HANDLE a = open_session(), b = open_session();
    EXPECT("C_CloseAllSessions", f->C_CloseAllSessions(token_slot()), CKR_OK);
    expect_session_invalid(a);
    expect_session_invalid(b);
    CK_SESSION_HANDLE h;
    EXPECT("C_OpenSession without CKF_SERIAL_SESSION", f->C_OpenSession(token_slot(), 0, NULL, NULL, &h),
           CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    s = open_session();
    EXPECT("C_Login unknown user type", f->C_Login(s, 7, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)),
           CKR_USER_TYPE_INVALID);
    f->C_CloseSession(s);
}

static void unknown_destroyed_and_closed_session_objects_are_handle_invalid(CK_SESSION_HANDLE s) {
    const CK_OBJECT_HANDLE bad[] = {0, 0x3fffffffUL, 0x7fffffffUL, (CK_OBJECT_HANDLE)-1};
    CK_OBJECT_HANDLE k = secret_key(s, CKK_AES), h, pub = 0, priv = 0;
    CK_ATTRIBUTE t[] = {{CKA_LABEL, buf, sizeof buf}};
    CK_ULONG n;
    for (size_t i = 0; i < 4; i++) {
        EXPECT("C_GetAttributeValue", f->C_GetAttributeValue(s, bad[i], t, 1), CKR_OBJECT_HANDLE_INVALID);
        EXPECT("C_SetAttributeValue", f->C_SetAttributeValue(s, bad[i], t, 1), CKR_OBJECT_HANDLE_INVALID);
        EXPECT("C_CopyObject", f->C_CopyObject(s, bad[i], NULL, 0, &h), CKR_OBJECT_HANDLE_INVALID);
        EXPECT("C_GetObjectSize", f->C_GetObjectSize(s, bad[i], &n), CKR_OBJECT_HANDLE_INVALID);
        EXPECT("C_DestroyObject", f->C_DestroyObject(s, bad[i]), CKR_OBJECT_HANDLE_INVALID);
        EXPECT("C_EncryptInit key", f->C_EncryptInit(s, &cbc, bad[i]), CKR_KEY_HANDLE_INVALID);
        EXPECT("C_SignInit key", f->C_SignInit(s, &hmac, bad[i]), CKR_KEY_HANDLE_INVALID);
        EXPECT("C_WrapKey wrapping key", f->C_WrapKey(s, &kw, bad[i], k, buf, &n), CKR_WRAPPING_KEY_HANDLE_INVALID);
        EXPECT("C_WrapKey key", f->C_WrapKey(s, &kw, k, bad[i], buf, &n), CKR_KEY_HANDLE_INVALID);
        EXPECT("C_UnwrapKey unwrapping key", f->C_UnwrapKey(s, &kw, bad[i], buf, 32, NULL, 0, &h),
               CKR_UNWRAPPING_KEY_HANDLE_INVALID);
        f->C_DigestInit(s, &sha256);
        EXPECT("C_DigestKey", f->C_DigestKey(s, bad[i]), CKR_KEY_HANDLE_INVALID);
    }
    ec_pair(s, &pub, &priv);
    CK_ECDH1_DERIVE_PARAMS ecdh = {CKD_NULL, 0, NULL, 65, buf};
    CK_MECHANISM derive = {CKM_ECDH1_DERIVE, &ecdh, sizeof ecdh};
    EXPECT("C_DeriveKey base key", f->C_DeriveKey(s, &derive, 0x7fffffffUL, NULL, 0, &h), CKR_KEY_HANDLE_INVALID);
    /* A destroyed object, and a session object of a session that has been closed. */
    CK_OBJECT_HANDLE gone = secret_key(s, CKK_AES);
    EXPECT("C_DestroyObject", f->C_DestroyObject(s, gone), CKR_OK);
    EXPECT("destroyed: C_GetAttributeValue", f->C_GetAttributeValue(s, gone, t, 1), CKR_OBJECT_HANDLE_INVALID);
    EXPECT("destroyed: C_EncryptInit", f->C_EncryptInit(s, &cbc, gone), CKR_KEY_HANDLE_INVALID);
    EXPECT("destroyed: C_DestroyObject again", f->C_DestroyObject(s, gone), CKR_OBJECT_HANDLE_INVALID);
    CK_SESSION_HANDLE other = open_session();
    CK_OBJECT_HANDLE foreign = secret_key(other, CKK_AES);
    EXPECT("another session's object is the application's too (section 4.4)", f->C_EncryptInit(s, &cbc, foreign),
           CKR_OK);
    n = sizeof buf;
    f->C_Encrypt(s, buf, 16, buf, &n);
    f->C_CloseSession(other);
    EXPECT("closed session's object: C_EncryptInit", f->C_EncryptInit(s, &cbc, foreign), CKR_KEY_HANDLE_INVALID);
    EXPECT("closed session's object: C_GetAttributeValue", f->C_GetAttributeValue(s, foreign, t, 1),
           CKR_OBJECT_HANDLE_INVALID);
}

static void objects_of_the_wrong_class_are_refused(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE data = data_object(s), pub = 0, priv = 0, h;
    CK_OBJECT_HANDLE aes = secret_key(s, CKK_AES);
    CK_ULONG n = sizeof buf;
    ec_pair(s, &pub, &priv);
    EXPECT("C_EncryptInit with a data object", f->C_EncryptInit(s, &cbc, data), CKR_KEY_HANDLE_INVALID);
    EXPECT("C_SignInit with a data object", f->C_SignInit(s, &hmac, data), CKR_KEY_HANDLE_INVALID);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    EXPECT("C_SignInit ECDSA with the public key", f->C_SignInit(s, &ecdsa, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    EXPECT("C_SignInit ECDSA with an AES key", f->C_SignInit(s, &ecdsa, aes), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT("C_EncryptInit AES-CBC with an EC key", f->C_EncryptInit(s, &cbc, pub), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT("C_WrapKey with a data object as wrapping key", f->C_WrapKey(s, &kw, data, aes, buf, &n),
           CKR_WRAPPING_KEY_HANDLE_INVALID);
    n = sizeof buf;
    EXPECT("C_WrapKey of a data object", f->C_WrapKey(s, &kw, aes, data, buf, &n), CKR_KEY_NOT_WRAPPABLE);
    n = sizeof buf;
    EXPECT("C_WrapKey of a public key", f->C_WrapKey(s, &kw, aes, pub, buf, &n), CKR_KEY_NOT_WRAPPABLE);
    EXPECT("C_UnwrapKey with a data object", f->C_UnwrapKey(s, &kw, data, buf, 32, NULL, 0, &h),
           CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    f->C_DigestInit(s, &sha256);
    EXPECT("C_DigestKey of a public key", f->C_DigestKey(s, pub), CKR_KEY_INDIGESTIBLE);
    f->C_DigestInit(s, &sha256);
    EXPECT("C_DigestKey of a data object", f->C_DigestKey(s, data), CKR_KEY_INDIGESTIBLE);
    CK_ULONG weird_class = 0x7fff0001UL;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &weird_class, sizeof weird_class}};
    EXPECT("C_CreateObject of an unknown class", f->C_CreateObject(s, t, 1, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ULONG rsa = CKK_RSA;
    CK_ATTRIBUTE mixed[] = {{CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &rsa, sizeof rsa},
                            {CKA_VALUE, key_bytes, sizeof key_bytes}};
    EXPECT("a secret key of type RSA", f->C_CreateObject(s, mixed, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
}

/* ---- mechanism parameters ------------------------------------------------------------------------------------ */

static void malformed_mechanism_parameters_are_mechanism_param_invalid(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE aes = secret_key(s, CKK_AES), mac_key = secret_key(s, CKK_GENERIC_SECRET);
    CK_OBJECT_HANDLE pub = 0, priv = 0, h;
    ec_pair(s, &pub, &priv);
    CK_GCM_PARAMS gcm = {iv, 12, 96, NULL, 0, 128};
    CK_AES_CTR_PARAMS ctr = {128, {0}};
    CK_ECDH1_DERIVE_PARAMS ecdh = {CKD_NULL, 0, NULL, 65, buf};
    CK_ULONG mac_len = 16;
    struct {
        const char *what;
        CK_MECHANISM_TYPE type;
        void *param;
        CK_ULONG len;
        int use; /* 0 encrypt with AES, 1 sign with the HMAC key, 2 derive from the EC key, 3 digest */
    } cases[] = {
        {"CBC IV of 15 bytes", CKM_AES_CBC, iv, 15, 0},
        {"CBC IV of 17 bytes", CKM_AES_CBC, buf, 17, 0},
        {"CBC IV NULL", CKM_AES_CBC, NULL, 0, 0},
        {"CBC IV NULL with a length", CKM_AES_CBC, NULL, 16, 0},
        {"GCM params one byte short", CKM_AES_GCM, &gcm, sizeof gcm - 1, 0},
        {"GCM params one CK_ULONG long", CKM_AES_GCM, buf, sizeof gcm + sizeof(CK_ULONG), 0},
        {"GCM params NULL", CKM_AES_GCM, NULL, 0, 0},
        {"GCM params NULL with their size", CKM_AES_GCM, NULL, sizeof gcm, 0},
        {"CTR params of the wrong size", CKM_AES_CTR, &ctr, sizeof ctr - 8, 0},
        {"CTR params NULL", CKM_AES_CTR, NULL, sizeof ctr, 0},
        {"ECDH1 params of the wrong size", CKM_ECDH1_DERIVE, &ecdh, sizeof ecdh - 1, 2},
        {"ECDH1 params NULL", CKM_ECDH1_DERIVE, NULL, 0, 2},
        {"HMAC_GENERAL length of 4 bytes", CKM_SHA256_HMAC_GENERAL, &mac_len, 4, 1},
        {"HMAC_GENERAL length NULL", CKM_SHA256_HMAC_GENERAL, NULL, sizeof mac_len, 1},
        {"HMAC with a parameter", CKM_SHA256_HMAC, &mac_len, sizeof mac_len, 1},
        {"SHA-256 with a parameter", CKM_SHA256, buf, 4, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CK_MECHANISM m = {cases[i].type, cases[i].param, cases[i].len};
        CK_RV rv = cases[i].use == 0   ? f->C_EncryptInit(s, &m, aes)
                   : cases[i].use == 1 ? f->C_SignInit(s, &m, mac_key)
                   : cases[i].use == 2 ? f->C_DeriveKey(s, &m, priv, NULL, 0, &h)
                                       : f->C_DigestInit(s, &m);
        EXPECT(cases[i].what, rv, CKR_MECHANISM_PARAM_INVALID);
    }
    gcm.pIv = NULL;
    CK_MECHANISM gcm_null_iv = {CKM_AES_GCM, &gcm, sizeof gcm};
    EXPECT("GCM pIv NULL with ulIvLen 12", f->C_EncryptInit(s, &gcm_null_iv, aes), CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM unknown = {0x7fff0001UL, NULL, 0};
    EXPECT("an unknown mechanism", f->C_EncryptInit(s, &unknown, aes), CKR_MECHANISM_INVALID);
    CK_MECHANISM vendor = {CKM_VENDOR_DEFINED | 0x1234, NULL, 0};
    EXPECT("an unknown vendor mechanism", f->C_DigestInit(s, &vendor), CKR_MECHANISM_INVALID);
    EXPECT("a good mechanism still works", f->C_EncryptInit(s, &cbc, aes), CKR_OK);
    CK_ULONG n = sizeof buf;
    f->C_Encrypt(s, buf, 16, buf, &n);
}

/* ---- attribute templates ------------------------------------------------------------------------------------- */

static void bad_templates_get_type_and_value_codes(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE h, k = secret_key(s, CKK_AES);
    CK_ULONG four = 4, label2 = CKA_LABEL;
    CK_BYTE three_bytes[3] = {1, 2, 3};
    unsigned int small = CKO_DATA;
    CK_ATTRIBUTE twice_same[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_LABEL, "a", 1},
                                 {CKA_LABEL, "a", 1}};
    EXPECT("the same attribute twice with one value", f->C_CreateObject(s, twice_same, 3, &h), CKR_OK);
    CK_ATTRIBUTE twice_differs[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_LABEL, "a", 1},
                                    {CKA_LABEL, "b", 1}};
    EXPECT("the same attribute twice with two values", f->C_CreateObject(s, twice_differs, 3, &h),
           CKR_TEMPLATE_INCONSISTENT);
    const CK_ATTRIBUTE_TYPE unknown[] = {0x7fff1234UL, CKA_VENDOR_DEFINED | 0x42, (CK_ATTRIBUTE_TYPE)-1};
    for (size_t i = 0; i < 3; i++) {
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}, {unknown[i], &four, sizeof four}};
        EXPECT("C_CreateObject with an unknown type", f->C_CreateObject(s, t, 2, &h), CKR_ATTRIBUTE_TYPE_INVALID);
        EXPECT("C_SetAttributeValue with an unknown type", f->C_SetAttributeValue(s, k, t + 1, 1),
               CKR_ATTRIBUTE_TYPE_INVALID);
        EXPECT("C_FindObjectsInit with an unknown type", f->C_FindObjectsInit(s, t + 1, 1),
               CKR_ATTRIBUTE_TYPE_INVALID);
        CK_ATTRIBUTE q[] = {{unknown[i], buf, sizeof buf}, {CKA_CLASS, buf + 64, sizeof(CK_ULONG)}};
        EXPECT("C_GetAttributeValue of an unknown type", f->C_GetAttributeValue(s, k, q, 2),
               CKR_ATTRIBUTE_TYPE_INVALID);
        CHECK("its length is CK_UNAVAILABLE_INFORMATION", q[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
        CHECK("the other attribute is still answered", q[1].ulValueLen == sizeof(CK_ULONG));
    }
    EXPECT("an attribute of another object class", f->C_CreateObject(s, (CK_ATTRIBUTE[]){
           {CKA_CLASS, &data_class, sizeof data_class}, {CKA_MODULUS, buf, 64}}, 2, &h), CKR_ATTRIBUTE_TYPE_INVALID);
    struct {
        const char *what;
        CK_ATTRIBUTE attr;
    } mistyped[] = {
        {"CKA_CLASS as a 4-byte int", {CKA_CLASS, &small, sizeof small}},
        {"CK_BBOOL of 4 bytes", {CKA_TOKEN, &four, sizeof four}},
        {"CK_BBOOL of 0 bytes", {CKA_PRIVATE, &yes, 0}},
        {"CK_ULONG of 3 bytes", {CKA_VALUE_LEN, three_bytes, 3}},
        {"CK_DATE that is not digits", {CKA_START_DATE, "2024-1-1", 8}},
        {"CK_DATE of 6 bytes", {CKA_END_DATE, "202401", 6}},
        {"a mechanism list of 3 bytes", {CKA_ALLOWED_MECHANISMS, three_bytes, 3}},
        {"an attribute array of 5 bytes", {CKA_WRAP_TEMPLATE, buf, 5}},
        {"a label that names an attribute type", {CKA_LABEL, &label2, 0}},
    };
    for (size_t i = 0; i < sizeof mistyped / sizeof mistyped[0] - 1; i++) {
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &aes_type, sizeof aes_type},
                            {CKA_VALUE, key_bytes, sizeof key_bytes}, mistyped[i].attr};
        CK_ULONG first = mistyped[i].attr.type == CKA_CLASS ? 1 : 0; /* CKA_CLASS: replace the good one */
        EXPECT(mistyped[i].what, f->C_CreateObject(s, t + first, 4 - first, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        if (mistyped[i].attr.type != CKA_CLASS && mistyped[i].attr.type != CKA_VALUE_LEN)
            EXPECT("... and in C_SetAttributeValue", f->C_SetAttributeValue(s, k, &mistyped[i].attr, 1),
                   CKR_ATTRIBUTE_VALUE_INVALID);
    }
    CK_ATTRIBUTE short_key[] = {{CKA_CLASS, &secret_class, sizeof secret_class},
                                {CKA_KEY_TYPE, &aes_type, sizeof aes_type}, {CKA_VALUE, key_bytes, 15}};
    EXPECT("an AES key of 15 bytes", f->C_CreateObject(s, short_key, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE bad_nested[] = {{CKA_LABEL, NULL, 4}};
    CK_ATTRIBUTE wrap_tmpl[] = {{CKA_CLASS, &secret_class, sizeof secret_class},
                                {CKA_KEY_TYPE, &aes_type, sizeof aes_type}, {CKA_VALUE, key_bytes, sizeof key_bytes},
                                {CKA_WRAP_TEMPLATE, bad_nested, sizeof bad_nested}};
    EXPECT("an attribute array holding a dangling length", f->C_CreateObject(s, wrap_tmpl, 4, &h),
           CKR_ARGUMENTS_BAD);
    CK_ATTRIBUTE nested_twice[] = {{CKA_WRAP_TEMPLATE, NULL, 0}};
    wrap_tmpl[3].pValue = nested_twice;
    wrap_tmpl[3].ulValueLen = sizeof nested_twice;
    EXPECT("an attribute array inside an attribute array", f->C_CreateObject(s, wrap_tmpl, 4, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    CK_MECHANISM keygen = {CKM_AES_KEY_GEN, NULL, 0};
    const CK_ULONG lengths[] = {0, 15, 1UL << 40};
    for (size_t i = 0; i < 3; i++) {
        CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, (void *)&lengths[i], sizeof(CK_ULONG)}};
        EXPECT("C_GenerateKey AES with a bad CKA_VALUE_LEN", f->C_GenerateKey(s, &keygen, t, 1, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
    }
    CK_ATTRIBUTE none[] = {{CKA_LABEL, "x", 1}};
    EXPECT("C_GenerateKey AES without CKA_VALUE_LEN", f->C_GenerateKey(s, &keygen, none, 1, &h),
           CKR_TEMPLATE_INCOMPLETE);
    EXPECT("C_CreateObject without CKA_CLASS", f->C_CreateObject(s, none, 1, &h), CKR_TEMPLATE_INCOMPLETE);
    CK_ATTRIBUTE q[] = {{CKA_KEY_TYPE, buf, 1}};
    EXPECT("C_GetAttributeValue into 1 byte", f->C_GetAttributeValue(s, k, q, 1), CKR_BUFFER_TOO_SMALL);
    CHECK("its length is CK_UNAVAILABLE_INFORMATION", q[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
}

/* ---- UTF-8 --------------------------------------------------------------------------------------------------- */

static void utf8_edge_cases_in_pins_and_labels(CK_SESSION_HANDLE s) {
    static const struct {
        const char *what, *text;
    } invalid[] = {
        {"a lone continuation byte", "abcd\x80"},
        {"a truncated sequence", "abcd\xe2\x82"},
        {"an overlong encoding of '/'", "abcd\xc0\xaf"},
        {"an encoded surrogate", "abcd\xed\xa0\x80"},
        {"0xFF", "abcd\xff\xfe"},
    };
    const size_t n_invalid = sizeof invalid / sizeof invalid[0];
    for (size_t i = 0; i < n_invalid; i++)
        EXPECT(invalid[i].what, f->C_SetPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin),
               (CK_UTF8CHAR_PTR)invalid[i].text, strlen(invalid[i].text)), CKR_PIN_INVALID);
    f->C_Logout(s);
    for (size_t i = 0; i < n_invalid; i++)
        EXPECT("... and as a login PIN it is just wrong", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)invalid[i].text,
               strlen(invalid[i].text)), CKR_PIN_INCORRECT);
    log_in(s);
    /* A PIN in several scripts, with a 4-byte character and an embedded NUL: counted bytes, never a C string. */
    static const CK_UTF8CHAR unicode_pin[] = "p\xc3\xa4ss \xe2\x9c\x93 \xf0\x9f\x94\x91\0end";
    const CK_ULONG unicode_len = sizeof unicode_pin - 1;
    EXPECT("C_SetPIN to a multi-script PIN", f->C_SetPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin),
           (CK_UTF8CHAR_PTR)unicode_pin, unicode_len), CKR_OK);
    CK_SESSION_HANDLE fresh = open_session();
    f->C_Logout(fresh);
    EXPECT("the PIN cut at its NUL is wrong", f->C_Login(fresh, CKU_USER, (CK_UTF8CHAR_PTR)unicode_pin,
           strlen((const char *)unicode_pin)), CKR_PIN_INCORRECT);
    EXPECT("C_Login with the multi-script PIN", f->C_Login(fresh, CKU_USER, (CK_UTF8CHAR_PTR)unicode_pin,
           unicode_len), CKR_OK);
    EXPECT("C_SetPIN back", f->C_SetPIN(fresh, (CK_UTF8CHAR_PTR)unicode_pin, unicode_len, (CK_UTF8CHAR_PTR)user_pin,
           strlen(user_pin)), CKR_OK);
    f->C_CloseSession(fresh);
    /* Object labels are byte strings: any bytes are kept and found exactly. */
    static const char *labels[] = {"\xf0\x9f\x94\x91 key", "caf\xc3\xa9", "bad \xff\xfe utf-8", "nul\0inside"};
    static const CK_ULONG lengths[] = {8, 5, 14, 10};
    for (size_t i = 0; i < 4; i++) {
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_LABEL, (void *)labels[i], lengths[i]}};
        CK_OBJECT_HANDLE h = 0, found = 0;
        CK_ULONG n = 0;
        EXPECT("C_CreateObject with an odd label", f->C_CreateObject(s, t, 2, &h), CKR_OK);
        f->C_FindObjectsInit(s, t, 2);
        f->C_FindObjects(s, &found, 1, &n);
        f->C_FindObjectsFinal(s);
        CHECK("found by the same bytes", n == 1 && found == h);
        CK_BYTE back[32];
        CK_ATTRIBUTE q[] = {{CKA_LABEL, back, sizeof back}};
        f->C_GetAttributeValue(s, h, q, 1);
        CHECK("read back byte for byte", q[0].ulValueLen == lengths[i] && !memcmp(back, labels[i], lengths[i]));
    }
}

/* The token label is a 32-byte blank-padded field: a multi-byte character may straddle its end; it is kept as is. */
static void utf8_token_label_round_trips(CK_SESSION_HANDLE unused) {
    CK_ULONG n = 0;
    f->C_GetSlotList(0, NULL, &n); /* the shared test store may hold hundreds of tokens */
    CK_SLOT_ID *slots = calloc(n, sizeof *slots);
    f->C_GetSlotList(0, slots, &n);
    CK_SLOT_ID fresh = slots[n - 1]; /* the slot holding a token not yet initialised */
    free(slots);
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof label);
    memcpy(label, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x94\x91", 10);
    memcpy(label + 29, "\xe2\x9c\x93", 3); /* a 3-byte character ends exactly at byte 32 */
    EXPECT("C_InitToken with an invalid UTF-8 SO PIN", f->C_InitToken(fresh, (CK_UTF8CHAR_PTR) "so\xff\xfe", 4,
           label), CKR_PIN_INVALID);
    EXPECT("C_InitToken with a UTF-8 label", f->C_InitToken(fresh, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), label),
           CKR_OK);
    CK_TOKEN_INFO info;
    EXPECT("C_GetTokenInfo", f->C_GetTokenInfo(fresh, &info), CKR_OK);
    CHECK("the label comes back byte for byte", !memcmp(info.label, label, sizeof label));
}

/* ---- the end ------------------------------------------------------------------------------------------------- */

static void the_host_is_still_served_afterwards(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = secret_key(s, CKK_GENERIC_SECRET);
    CK_BYTE mac[32], rnd[16];
    CK_ULONG n = sizeof mac;
    EXPECT("C_SignInit", f->C_SignInit(s, &hmac, k), CKR_OK);
    EXPECT("C_Sign", f->C_Sign(s, (CK_BYTE_PTR) "hello", 5, mac, &n), CKR_OK);
    EXPECT("C_VerifyInit", f->C_VerifyInit(s, &hmac, k), CKR_OK);
    EXPECT("C_Verify", f->C_Verify(s, (CK_BYTE_PTR) "hello", 5, mac, n), CKR_OK);
    EXPECT("C_GenerateRandom", f->C_GenerateRandom(s, rnd, sizeof rnd), CKR_OK);
}

typedef void (*rule_fn)(CK_SESSION_HANDLE);
struct rule {
    const char *name;
    rule_fn fn;
};
#define RULE(fn) {#fn, fn}

static const struct rule rules[] = {
    RULE(null_where_a_pointer_is_required_is_arguments_bad),
    RULE(null_where_the_spec_allows_it_is_accepted),
    RULE(null_with_a_nonzero_length_is_arguments_bad),
    RULE(zero_lengths_get_their_codes),
    RULE(absurd_lengths_are_refused_before_reading),
    RULE(invalid_slot_ids_are_slot_id_invalid),
    RULE(unknown_and_closed_sessions_are_session_handle_invalid),
    RULE(unknown_destroyed_and_closed_session_objects_are_handle_invalid),
    RULE(objects_of_the_wrong_class_are_refused),
    RULE(malformed_mechanism_parameters_are_mechanism_param_invalid),
    RULE(bad_templates_get_type_and_value_codes),
    RULE(utf8_edge_cases_in_pins_and_labels),
    RULE(utf8_token_label_round_trips),
    RULE(the_host_is_still_served_afterwards),
};

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODULE USER-PIN SO-PIN TOKEN-LABEL\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    (void)find;
    user_pin = argv[2];
    so_pin = argv[3];
    token_label = argv[4];
    if (f->C_Initialize(NULL) != CKR_OK) return 2;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        rule = rules[i].name;
        CK_SESSION_HANDLE s = open_session();
        log_in(s);
        rules[i].fn(s);
        f->C_CloseAllSessions(token_slot()); /* drops the rule's session objects and the login */
    }
    f->C_Finalize(NULL);
    printf(failures ? "FAILED %d\n" : "ALL OK\n", failures);
    return failures ? 1 : 0;
}
