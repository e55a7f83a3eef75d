/*
 * PKCS#11 conformance rules checked from a non-Python host, one RULE per rule of the specification.
 * Usage: conformance MODULE USER-PIN SO-PIN TOKEN-LABEL
 * Prints "ok <rule>: <step>" / "FAIL <rule>: <step>: ..." lines; tests/test_conformance_c_host.py turns every RULE
 * into its own pytest test.
 */
#include <pthread.h>

#include "common.h"

static const char *user_pin, *so_pin;
static const char *rule; /* the rule being checked: prefixes every line */
static char line[256];
#define STEP(s) (snprintf(line, sizeof line, "%s: %s", rule, s), line)
#define EXPECT(step, got, want) expect(STEP(step), got, want)
#define CHECK(step, cond) check(STEP(step), cond)

#define CK_TRUE 1
#define CK_FALSE 0
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_ULONG secret_class = CKO_SECRET_KEY, aes_type = CKK_AES;
static CK_BYTE key_bytes[16] = "0123456789abcdef";
static CK_BYTE iv[16] = "fedcba9876543210";

/* An AES session key with a known value; `extra` attributes are added (and must not repeat the base ones). */
static CK_OBJECT_HANDLE aes_key(CK_SESSION_HANDLE s, CK_ATTRIBUTE *extra, CK_ULONG n_extra) {
    CK_ATTRIBUTE t[16] = {
        {CKA_CLASS, &secret_class, sizeof secret_class},
        {CKA_KEY_TYPE, &aes_type, sizeof aes_type},
        {CKA_VALUE, key_bytes, sizeof key_bytes},
    };
    CK_ULONG n = 3;
    for (CK_ULONG i = 0; i < n_extra && n < 16; i++) t[n++] = extra[i];
    CK_OBJECT_HANDLE h = 0;
    CK_RV rv = f->C_CreateObject(s, t, n, &h);
    if (rv != CKR_OK) printf("  (creating a test key failed: 0x%lx)\n", rv);
    return h;
}

static CK_OBJECT_HANDLE plain_aes_key(CK_SESSION_HANDLE s) {
    CK_ATTRIBUTE extra[] = {{CKA_SENSITIVE, &no, 1}, {CKA_EXTRACTABLE, &yes, 1}};
    return aes_key(s, extra, 2);
}

static CK_SESSION_HANDLE open_session(CK_FLAGS flags) {
    CK_SESSION_HANDLE s = 0;
    f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | flags, NULL, NULL, &s);
    return s;
}

static CK_MECHANISM cbc_pad = {CKM_AES_CBC_PAD, iv, sizeof iv};
static CK_MECHANISM cbc = {CKM_AES_CBC, iv, sizeof iv};

/* ---- section 5.2: operation lifecycle --------------------------------------------------------------------- */

static void init_while_active_is_operation_active(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    EXPECT("C_EncryptInit", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    EXPECT("second C_EncryptInit", f->C_EncryptInit(s, &cbc_pad, k), CKR_OPERATION_ACTIVE);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    EXPECT("C_DigestInit", f->C_DigestInit(s, &sha), CKR_OK);
    EXPECT("second C_DigestInit", f->C_DigestInit(s, &sha), CKR_OPERATION_ACTIVE);
    CK_BYTE out[64];
    CK_ULONG len = sizeof out;
    f->C_EncryptFinal(s, out, &len);
    len = sizeof out;
    f->C_DigestFinal(s, out, &len);
}

static void call_without_init_is_operation_not_initialized(CK_SESSION_HANDLE s) {
    CK_BYTE in[16] = {0}, out[64];
    CK_ULONG len = sizeof out;
    EXPECT("C_Encrypt", f->C_Encrypt(s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_EncryptUpdate", f->C_EncryptUpdate(s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_EncryptFinal", f->C_EncryptFinal(s, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_Decrypt", f->C_Decrypt(s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_Digest", f->C_Digest(s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_DigestKey", f->C_DigestKey(s, 1), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_SignUpdate", f->C_SignUpdate(s, in, 16), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_Verify", f->C_Verify(s, in, 16, in, 16), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("C_FindObjects", f->C_FindObjects(s, (CK_OBJECT_HANDLE *)out, 1, &len), CKR_OPERATION_NOT_INITIALIZED);
}

static void single_part_call_and_final_end_the_operation(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_BYTE in[20] = {1}, out[64];
    CK_ULONG len = sizeof out;
    f->C_EncryptInit(s, &cbc_pad, k);
    EXPECT("C_Encrypt", f->C_Encrypt(s, in, sizeof in, out, &len), CKR_OK);
    EXPECT("C_Encrypt again", f->C_Encrypt(s, in, sizeof in, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    f->C_EncryptInit(s, &cbc_pad, k);
    len = sizeof out;
    EXPECT("C_EncryptUpdate", f->C_EncryptUpdate(s, in, sizeof in, out, &len), CKR_OK);
    len = sizeof out;
    EXPECT("C_EncryptFinal", f->C_EncryptFinal(s, out, &len), CKR_OK);
    EXPECT("C_EncryptFinal again", f->C_EncryptFinal(s, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT("a new C_EncryptInit works", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    len = sizeof out;
    f->C_Encrypt(s, in, sizeof in, out, &len);
}

static void length_query_and_buffer_too_small_keep_the_operation(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_BYTE in[20] = {1}, out[64];
    CK_ULONG len = 0;
    f->C_EncryptInit(s, &cbc_pad, k);
    EXPECT("length query", f->C_Encrypt(s, in, sizeof in, NULL, &len), CKR_OK);
    CHECK("length query answers 32", len == 32);
    len = 5;
    EXPECT("too small buffer", f->C_Encrypt(s, in, sizeof in, out, &len), CKR_BUFFER_TOO_SMALL);
    CHECK("too small reports 32", len == 32);
    len = sizeof out;
    EXPECT("the operation is still there", f->C_Encrypt(s, in, sizeof in, out, &len), CKR_OK);
}

static void failing_call_ends_the_operation(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_BYTE in[20] = {1}, out[64];
    CK_ULONG len = sizeof out;
    f->C_EncryptInit(s, &cbc, k);
    EXPECT("partial block is CKR_DATA_LEN_RANGE", f->C_Encrypt(s, in, 20, out, &len), CKR_DATA_LEN_RANGE);
    EXPECT("operation ended", f->C_Encrypt(s, in, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    f->C_DecryptInit(s, &cbc, k);
    len = sizeof out;
    EXPECT("partial ciphertext block is CKR_ENCRYPTED_DATA_LEN_RANGE", f->C_Decrypt(s, in, 20, out, &len),
           CKR_ENCRYPTED_DATA_LEN_RANGE);
    EXPECT("next C_DecryptInit works", f->C_DecryptInit(s, &cbc, k), CKR_OK);
    len = sizeof out;
    EXPECT("and decrypts", f->C_Decrypt(s, in, 16, out, &len), CKR_OK);
}

static void mixing_single_and_multi_part_is_operation_active(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_BYTE in[16] = {1}, out[64];
    CK_ULONG len = sizeof out;
    f->C_EncryptInit(s, &cbc_pad, k);
    f->C_EncryptUpdate(s, in, 16, out, &len);
    len = sizeof out;
    EXPECT("C_Encrypt after C_EncryptUpdate", f->C_Encrypt(s, in, 16, out, &len), CKR_OPERATION_ACTIVE);
    EXPECT("that error ended the operation", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    len = 0;
    f->C_Encrypt(s, in, 16, NULL, &len); /* a single-part length query */
    len = sizeof out;
    EXPECT("C_EncryptUpdate after a C_Encrypt length query", f->C_EncryptUpdate(s, in, 16, out, &len),
           CKR_OPERATION_ACTIVE);
}

/* ---- sections 5.8-5.13: precise codes of the crypto functions ---------------------------------------------- */

static void invalid_key_handle_in_crypto_init_is_key_handle_invalid(CK_SESSION_HANDLE s) {
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    EXPECT("C_EncryptInit", f->C_EncryptInit(s, &cbc_pad, 0x7777777), CKR_KEY_HANDLE_INVALID);
    EXPECT("C_DecryptInit", f->C_DecryptInit(s, &cbc_pad, 0x7777777), CKR_KEY_HANDLE_INVALID);
    EXPECT("C_SignInit", f->C_SignInit(s, &hmac, 0x7777777), CKR_KEY_HANDLE_INVALID);
    EXPECT("C_VerifyInit", f->C_VerifyInit(s, &hmac, 0x7777777), CKR_KEY_HANDLE_INVALID);
}

static void bad_iv_is_mechanism_param_invalid(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_MECHANISM short_iv = {CKM_AES_CBC, iv, 5};
    EXPECT("5-byte CBC IV", f->C_EncryptInit(s, &short_iv, k), CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM no_iv = {CKM_AES_CBC, NULL, 0};
    EXPECT("no CBC IV", f->C_EncryptInit(s, &no_iv, k), CKR_MECHANISM_PARAM_INVALID);
    EXPECT("a good C_EncryptInit after them", f->C_EncryptInit(s, &cbc, k), CKR_OK);
    CK_BYTE out[32];
    CK_ULONG len = sizeof out;
    f->C_Encrypt(s, iv, 16, out, &len);
}

static void wrong_key_type_is_key_type_inconsistent(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_MECHANISM rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    EXPECT("AES key for RSA signing", f->C_SignInit(s, &rsa, k), CKR_KEY_TYPE_INCONSISTENT);
}

static void key_without_usage_attribute_is_key_function_not_permitted(CK_SESSION_HANDLE s) {
    CK_ATTRIBUTE extra[] = {{CKA_ENCRYPT, &no, 1}, {CKA_SIGN, &no, 1}};
    CK_OBJECT_HANDLE k = aes_key(s, extra, 2);
    EXPECT("C_EncryptInit", f->C_EncryptInit(s, &cbc_pad, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_MECHANISM cmac = {CKM_AES_CMAC, NULL, 0};
    EXPECT("C_SignInit", f->C_SignInit(s, &cmac, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
}

static void mechanism_outside_allowed_mechanisms_is_mechanism_invalid(CK_SESSION_HANDLE s) {
    CK_MECHANISM_TYPE allowed[] = {CKM_AES_CBC_PAD};
    CK_ATTRIBUTE extra[] = {{CKA_ALLOWED_MECHANISMS, allowed, sizeof allowed}};
    CK_OBJECT_HANDLE k = aes_key(s, extra, 1);
    EXPECT("AES_ECB not allowed", f->C_EncryptInit(s, &(CK_MECHANISM){CKM_AES_ECB, NULL, 0}, k),
           CKR_MECHANISM_INVALID);
    EXPECT("AES_CBC_PAD allowed", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    CK_BYTE out[32];
    CK_ULONG len = sizeof out;
    f->C_Encrypt(s, iv, 1, out, &len);
}

static void digest_key_digests_the_key_value_and_refuses_other_objects(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = aes_key(s, NULL, 0); /* sensitive: its value never leaves, but can be digested */
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_BYTE by_key[32], by_value[32];
    CK_ULONG len1 = sizeof by_key, len2 = sizeof by_value;
    f->C_DigestInit(s, &sha);
    EXPECT("C_DigestKey", f->C_DigestKey(s, k), CKR_OK);
    EXPECT("C_DigestFinal", f->C_DigestFinal(s, by_key, &len1), CKR_OK);
    f->C_DigestInit(s, &sha);
    f->C_Digest(s, key_bytes, sizeof key_bytes, by_value, &len2);
    CHECK("equals the digest of the value", len1 == 32 && len2 == 32 && !memcmp(by_key, by_value, 32));
    CK_ULONG data_class = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof data_class}};
    CK_OBJECT_HANDLE data = 0;
    f->C_CreateObject(s, t, 1, &data);
    f->C_DigestInit(s, &sha);
    EXPECT("a data object is CKR_KEY_INDIGESTIBLE", f->C_DigestKey(s, data), CKR_KEY_INDIGESTIBLE);
    EXPECT("and the error ended the digest", f->C_DigestFinal(s, by_key, &len1), CKR_OPERATION_NOT_INITIALIZED);
    f->C_DigestInit(s, &sha);
    EXPECT("a bad handle is CKR_KEY_HANDLE_INVALID", f->C_DigestKey(s, 0x7777777), CKR_KEY_HANDLE_INVALID);
}

/* ---- section 5.7 and 4: object and attribute rules ------------------------------------------------------- */

static void template_errors_have_their_codes(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE no_value[] = {{CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &aes_type, 8}};
    EXPECT("missing CKA_VALUE is CKR_TEMPLATE_INCOMPLETE", f->C_CreateObject(s, no_value, 2, &h),
           CKR_TEMPLATE_INCOMPLETE);
    CK_ULONG other_class = CKO_DATA;
    CK_ATTRIBUTE twice[] = {{CKA_CLASS, &secret_class, 8}, {CKA_CLASS, &other_class, 8}};
    EXPECT("CKA_CLASS twice is CKR_TEMPLATE_INCONSISTENT", f->C_CreateObject(s, twice, 2, &h),
           CKR_TEMPLATE_INCONSISTENT);
    CK_BYTE short_value[5] = "abcde";
    CK_ATTRIBUTE bad_len[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &aes_type, 8},
                              {CKA_VALUE, short_value, 5}};
    EXPECT("a 5-byte AES key is CKR_ATTRIBUTE_VALUE_INVALID", f->C_CreateObject(s, bad_len, 3, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE bad_bool[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &aes_type, 8},
                               {CKA_VALUE, key_bytes, 16}, {CKA_ENCRYPT, &secret_class, 8}};
    EXPECT("an 8-byte CK_BBOOL is CKR_ATTRIBUTE_VALUE_INVALID", f->C_CreateObject(s, bad_bool, 4, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE local[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &aes_type, 8},
                            {CKA_VALUE, key_bytes, 16}, {CKA_LOCAL, &yes, 1}};
    EXPECT("CKA_LOCAL is CKR_ATTRIBUTE_READ_ONLY", f->C_CreateObject(s, local, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE foreign[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &aes_type, 8},
                              {CKA_VALUE, key_bytes, 16}, {CKA_MODULUS, key_bytes, 16}};
    EXPECT("CKA_MODULUS on an AES key is CKR_ATTRIBUTE_TYPE_INVALID", f->C_CreateObject(s, foreign, 4, &h),
           CKR_ATTRIBUTE_TYPE_INVALID);
}

static void unmodifiable_uncopyable_undestroyable_objects_are_action_prohibited(CK_SESSION_HANDLE s) {
    CK_ATTRIBUTE extra[] = {{CKA_MODIFIABLE, &no, 1}, {CKA_COPYABLE, &no, 1}, {CKA_DESTROYABLE, &no, 1}};
    CK_OBJECT_HANDLE k = aes_key(s, extra, 3), copy;
    CK_ATTRIBUTE label = {CKA_LABEL, "x", 1};
    EXPECT("C_SetAttributeValue", f->C_SetAttributeValue(s, k, &label, 1), CKR_ACTION_PROHIBITED);
    EXPECT("C_CopyObject", f->C_CopyObject(s, k, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
    EXPECT("C_DestroyObject", f->C_DestroyObject(s, k), CKR_ACTION_PROHIBITED);
}

static void one_way_attributes_only_change_their_way(CK_SESSION_HANDLE s) {
    CK_ATTRIBUTE extra[] = {{CKA_SENSITIVE, &no, 1}, {CKA_EXTRACTABLE, &yes, 1}, {CKA_COPYABLE, &yes, 1}};
    CK_OBJECT_HANDLE k = aes_key(s, extra, 3);
    CK_ATTRIBUTE set_true[] = {{CKA_SENSITIVE, &yes, 1}}, set_false[] = {{CKA_SENSITIVE, &no, 1}};
    EXPECT("CKA_SENSITIVE to TRUE", f->C_SetAttributeValue(s, k, set_true, 1), CKR_OK);
    EXPECT("CKA_SENSITIVE back to FALSE", f->C_SetAttributeValue(s, k, set_false, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE ex_false[] = {{CKA_EXTRACTABLE, &no, 1}}, ex_true[] = {{CKA_EXTRACTABLE, &yes, 1}};
    EXPECT("CKA_EXTRACTABLE to FALSE", f->C_SetAttributeValue(s, k, ex_false, 1), CKR_OK);
    EXPECT("CKA_EXTRACTABLE back to TRUE", f->C_SetAttributeValue(s, k, ex_true, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE cp_false[] = {{CKA_COPYABLE, &no, 1}}, cp_true[] = {{CKA_COPYABLE, &yes, 1}};
    EXPECT("CKA_COPYABLE to FALSE", f->C_SetAttributeValue(s, k, cp_false, 1), CKR_OK);
    EXPECT("CKA_COPYABLE back to TRUE", f->C_SetAttributeValue(s, k, cp_true, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE wwt_true[] = {{CKA_WRAP_WITH_TRUSTED, &yes, 1}}, wwt_false[] = {{CKA_WRAP_WITH_TRUSTED, &no, 1}};
    EXPECT("CKA_WRAP_WITH_TRUSTED to TRUE", f->C_SetAttributeValue(s, k, wwt_true, 1), CKR_OK);
    EXPECT("CKA_WRAP_WITH_TRUSTED is then fixed", f->C_SetAttributeValue(s, k, wwt_false, 1),
           CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE trusted[] = {{CKA_TRUSTED, &yes, 1}};
    EXPECT("only the SO sets CKA_TRUSTED", f->C_SetAttributeValue(s, k, trusted, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE value = {CKA_VALUE, NULL, 0};
    EXPECT("the sensitive value stays hidden", f->C_GetAttributeValue(s, k, &value, 1), CKR_ATTRIBUTE_SENSITIVE);
    CHECK("with length -1", value.ulValueLen == CK_UNAVAILABLE_INFORMATION);
}

static void copy_object_applies_the_rules_of_set(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE k = aes_key(s, NULL, 0), copy = 0;
    CK_ATTRIBUTE unsens[] = {{CKA_SENSITIVE, &no, 1}};
    EXPECT("copy that clears CKA_SENSITIVE", f->C_CopyObject(s, k, unsens, 1, &copy), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE unmodifiable[] = {{CKA_MODIFIABLE, &no, 1}, {CKA_LABEL, "copy", 4}};
    EXPECT("copy that becomes unmodifiable", f->C_CopyObject(s, k, unmodifiable, 2, &copy), CKR_OK);
    CK_BBOOL modifiable = 1;
    CK_ATTRIBUTE read = {CKA_MODIFIABLE, &modifiable, 1};
    f->C_GetAttributeValue(s, copy, &read, 1);
    CHECK("the copy is unmodifiable", modifiable == CK_FALSE);
}

/* ---- wrap and unwrap policy (sections 4.9, 4.10, 5.18) ----------------------------------------------------- */

static CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};

static void unextractable_key_cannot_be_wrapped(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE wrapper = plain_aes_key(s), k = aes_key(s, NULL, 0);
    CK_ULONG len = 0;
    EXPECT("C_WrapKey", f->C_WrapKey(s, &kw, wrapper, k, NULL, &len), CKR_KEY_UNEXTRACTABLE);
}

static void wrap_template_restricts_what_a_key_wraps(CK_SESSION_HANDLE s) {
    CK_BYTE id[] = "wrappable";
    CK_ATTRIBUTE tmpl[] = {{CKA_ID, id, sizeof id - 1}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_ATTRIBUTE extra[] = {{CKA_WRAP_TEMPLATE, tmpl, sizeof tmpl}, {CKA_SENSITIVE, &no, 1}};
    CK_OBJECT_HANDLE wrapper = aes_key(s, extra, 2);
    CK_ATTRIBUTE match_attrs[] = {{CKA_ID, id, sizeof id - 1}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE matching = aes_key(s, match_attrs, 2);
    CK_OBJECT_HANDLE other = plain_aes_key(s);
    CK_BYTE out[64];
    CK_ULONG len = sizeof out;
    EXPECT("a key matching the template", f->C_WrapKey(s, &kw, wrapper, matching, out, &len), CKR_OK);
    len = sizeof out;
    EXPECT("a key not matching it", f->C_WrapKey(s, &kw, wrapper, other, out, &len), CKR_KEY_NOT_WRAPPABLE);
    /* The template reads back as an attribute array: first its size, then the attributes and their values. */
    CK_ATTRIBUTE read = {CKA_WRAP_TEMPLATE, NULL, 0};
    EXPECT("size query of CKA_WRAP_TEMPLATE", f->C_GetAttributeValue(s, wrapper, &read, 1), CKR_OK);
    CHECK("two attributes", read.ulValueLen == 2 * sizeof(CK_ATTRIBUTE));
    CK_ATTRIBUTE nested[2];
    memset(nested, 0, sizeof nested);
    read.pValue = nested;
    EXPECT("lengths of the nested attributes", f->C_GetAttributeValue(s, wrapper, &read, 1), CKR_OK);
    CK_BYTE id_back[32];
    CK_BBOOL ex_back = 0;
    for (int i = 0; i < 2; i++) nested[i].pValue = nested[i].type == CKA_ID ? (void *)id_back : (void *)&ex_back;
    EXPECT("values of the nested attributes", f->C_GetAttributeValue(s, wrapper, &read, 1), CKR_OK);
    int id_ok = 0;
    for (int i = 0; i < 2; i++)
        if (nested[i].type == CKA_ID) id_ok = nested[i].ulValueLen == sizeof id - 1 && !memcmp(id_back, id, 9);
    CHECK("they are the template's", id_ok && ex_back == CK_TRUE);
}

static void unwrap_template_is_applied_and_conflicts_are_template_inconsistent(CK_SESSION_HANDLE s) {
    CK_BYTE label[] = "from-unwrap-template";
    CK_ATTRIBUTE tmpl[] = {{CKA_LABEL, label, sizeof label - 1}, {CKA_DECRYPT, &no, 1}};
    CK_ATTRIBUTE extra[] = {{CKA_UNWRAP_TEMPLATE, tmpl, sizeof tmpl}, {CKA_SENSITIVE, &no, 1},
                            {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE wrapper = aes_key(s, extra, 3), k = plain_aes_key(s), unwrapped = 0;
    CK_BYTE wrapped[64];
    CK_ULONG len = sizeof wrapped;
    EXPECT("C_WrapKey", f->C_WrapKey(s, &kw, wrapper, k, wrapped, &len), CKR_OK);
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &aes_type, 8}};
    EXPECT("C_UnwrapKey", f->C_UnwrapKey(s, &kw, wrapper, wrapped, len, t, 2, &unwrapped), CKR_OK);
    CK_BYTE label_back[64];
    CK_BBOOL decrypt = 1, local = 1, always_sensitive = 1;
    CK_ATTRIBUTE read[] = {{CKA_LABEL, label_back, sizeof label_back}, {CKA_DECRYPT, &decrypt, 1},
                           {CKA_LOCAL, &local, 1}, {CKA_ALWAYS_SENSITIVE, &always_sensitive, 1}};
    EXPECT("read back", f->C_GetAttributeValue(s, unwrapped, read, 4), CKR_OK);
    CHECK("the template's label and usage", read[0].ulValueLen == sizeof label - 1 && decrypt == CK_FALSE);
    CHECK("an unwrapped key is neither local nor always sensitive", local == CK_FALSE && always_sensitive == CK_FALSE);
    CK_ATTRIBUTE conflict[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &aes_type, 8}, {CKA_DECRYPT, &yes, 1}};
    EXPECT("a conflicting template", f->C_UnwrapKey(s, &kw, wrapper, wrapped, len, conflict, 3, &unwrapped),
           CKR_TEMPLATE_INCONSISTENT);
}

static void derive_template_and_concatenate_base_and_key(CK_SESSION_HANDLE s) {
    CK_ULONG generic = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE tmpl[] = {{CKA_SIGN, &no, 1}};
    CK_ATTRIBUTE extra[] = {{CKA_DERIVE, &yes, 1}, {CKA_DERIVE_TEMPLATE, tmpl, sizeof tmpl}};
    CK_OBJECT_HANDLE base = aes_key(s, extra, 2), other = plain_aes_key(s), derived = 0;
    CK_MECHANISM concat = {CKM_CONCATENATE_BASE_AND_KEY, &other, sizeof other};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &generic, 8}, {CKA_SENSITIVE, &no, 1},
                        {CKA_EXTRACTABLE, &yes, 1}};
    EXPECT("C_DeriveKey", f->C_DeriveKey(s, &concat, base, t, 4, &derived), CKR_OK);
    CK_BYTE value[64];
    CK_BBOOL sign = 1;
    CK_ATTRIBUTE read[] = {{CKA_VALUE, value, sizeof value}, {CKA_SIGN, &sign, 1}};
    EXPECT("read back", f->C_GetAttributeValue(s, derived, read, 2), CKR_OK);
    CHECK("value is base || other", read[0].ulValueLen == 32 && !memcmp(value, key_bytes, 16) &&
                                        !memcmp(value + 16, key_bytes, 16));
    CHECK("CKA_DERIVE_TEMPLATE applied", sign == CK_FALSE);
    CK_OBJECT_HANDLE missing = 0x7777777;
    CK_MECHANISM bad = {CKM_CONCATENATE_BASE_AND_KEY, &missing, sizeof missing};
    EXPECT("a missing second key", f->C_DeriveKey(s, &bad, base, t, 4, &derived), CKR_KEY_HANDLE_INVALID);
    CK_ATTRIBUTE conflict[] = {{CKA_CLASS, &secret_class, 8}, {CKA_KEY_TYPE, &generic, 8}, {CKA_SIGN, &yes, 1}};
    EXPECT("a template against CKA_DERIVE_TEMPLATE", f->C_DeriveKey(s, &concat, base, conflict, 3, &derived),
           CKR_TEMPLATE_INCONSISTENT);
}

/* ---- section 5.6: sessions and login ----------------------------------------------------------------------- */

static void login_is_shared_by_the_sessions_and_lost_with_the_last(CK_SESSION_HANDLE s) {
    (void)s; /* runs with no session open */
    CK_SESSION_HANDLE a = open_session(CKF_RW_SESSION), b = open_session(0);
    EXPECT("C_Login on one session", f->C_Login(a, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);
    CK_SESSION_INFO info;
    f->C_GetSessionInfo(b, &info);
    CHECK("the other session is a user session", info.state == CKS_RO_USER_FUNCTIONS);
    EXPECT("logging in again", f->C_Login(b, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)),
           CKR_USER_ALREADY_LOGGED_IN);
    f->C_CloseSession(b);
    EXPECT("SO login while the user is in", f->C_Login(a, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin)),
           CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    f->C_CloseSession(a);
    CK_SESSION_HANDLE c = open_session(0);
    f->C_GetSessionInfo(c, &info);
    CHECK("after the last session closed, nobody is logged in", info.state == CKS_RO_PUBLIC_SESSION);
    EXPECT("C_Logout when not logged in", f->C_Logout(c), CKR_USER_NOT_LOGGED_IN);
    f->C_CloseSession(c);
}

static void read_only_sessions_and_so_login_rules(CK_SESSION_HANDLE s) {
    (void)s; /* runs with no session open */
    CK_SESSION_HANDLE ro = open_session(0), rw = open_session(CKF_RW_SESSION);
    EXPECT("SO login with a read-only session open", f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin)),
           CKR_SESSION_READ_ONLY_EXISTS);
    CK_ULONG data_class = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, 8}, {CKA_TOKEN, &yes, 1}};
    CK_OBJECT_HANDLE h;
    EXPECT("a token object from a read-only session", f->C_CreateObject(ro, t, 2, &h), CKR_SESSION_READ_ONLY);
    f->C_CloseSession(ro);
    EXPECT("SO login", f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin)), CKR_OK);
    CK_SESSION_HANDLE another;
    EXPECT("a read-only session while the SO is in",
           f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &another), CKR_SESSION_READ_WRITE_SO_EXISTS);
    EXPECT("user login while the SO is in", f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)),
           CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    f->C_CloseSession(rw);
}

static void wrap_with_trusted_needs_a_trusted_wrapping_key(CK_SESSION_HANDLE s) {
    (void)s;
    /* The SO marks a public wrapping key trusted; the user wraps with it. */
    CK_SESSION_HANDLE so = open_session(CKF_RW_SESSION);
    f->C_Login(so, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
    CK_BYTE label[] = "trusted-wrapper";
    CK_ATTRIBUTE extra[] = {{CKA_TRUSTED, &yes, 1}, {CKA_PRIVATE, &no, 1}, {CKA_TOKEN, &yes, 1},
                            {CKA_LABEL, label, sizeof label - 1}};
    CK_OBJECT_HANDLE trusted = aes_key(so, extra, 4);
    CHECK("the SO may set CKA_TRUSTED", trusted != 0);
    f->C_Logout(so);
    f->C_CloseSession(so);
    CK_SESSION_HANDLE u = open_session(CKF_RW_SESSION);
    f->C_Login(u, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    trusted = find(u, CKO_SECRET_KEY, "trusted-wrapper");
    CK_OBJECT_HANDLE untrusted = plain_aes_key(u);
    CK_ATTRIBUTE wwt[] = {{CKA_WRAP_WITH_TRUSTED, &yes, 1}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE k = aes_key(u, wwt, 2);
    CK_BYTE out[64];
    CK_ULONG len = sizeof out;
    EXPECT("with an untrusted wrapping key", f->C_WrapKey(u, &kw, untrusted, k, out, &len), CKR_KEY_NOT_WRAPPABLE);
    len = sizeof out;
    EXPECT("with the trusted one", f->C_WrapKey(u, &kw, trusted, k, out, &len), CKR_OK);
    f->C_DestroyObject(u, trusted);
    f->C_CloseSession(u);
}

/* ---- threads (section 5.1 / 6.7) -------------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 60
static CK_SESSION_HANDLE shared_session;
static int thread_errors[THREADS];
static int first_error_line[THREADS];
#define T(cond) do { if (cond) { if (!*errors) first_error_line[id] = __LINE__; (*errors)++; } } while (0)

/* Each thread: its own session for encrypt/decrypt, digest and CMAC, checking every result; plus random bytes and
 * attribute reads on the session all threads share. */
static void *worker(void *arg) {
    int id = (int)(long)arg, *errors = &thread_errors[id];
    CK_SESSION_HANDLE s = open_session(CKF_RW_SESSION);
    CK_OBJECT_HANDLE k = plain_aes_key(s);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0}, cmac = {CKM_AES_CMAC, NULL, 0};
    for (int r = 0; r < ROUNDS; r++) {
        CK_BYTE msg[48], ct[64], pt[64], d1[32], d2[32], mac[16];
        memset(msg, id * 31 + r, sizeof msg);
        CK_ULONG clen = sizeof ct, plen = sizeof pt, l1 = 32, l2 = 32, mlen = sizeof mac;
        T(f->C_EncryptInit(s, &cbc_pad, k) != CKR_OK);
        T(f->C_Encrypt(s, msg, sizeof msg, ct, &clen) != CKR_OK);
        T(f->C_DecryptInit(s, &cbc_pad, k) != CKR_OK);
        T(f->C_Decrypt(s, ct, clen, pt, &plen) != CKR_OK);
        T(plen != sizeof msg || memcmp(pt, msg, sizeof msg) != 0);
        T(f->C_DigestInit(s, &sha) != CKR_OK);
        T(f->C_Digest(s, msg, sizeof msg, d1, &l1) != CKR_OK);
        T(f->C_DigestInit(s, &sha) != CKR_OK);
        T(f->C_DigestUpdate(s, msg, 10) != CKR_OK);
        T(f->C_DigestUpdate(s, msg + 10, sizeof msg - 10) != CKR_OK);
        T(f->C_DigestFinal(s, d2, &l2) != CKR_OK);
        T(memcmp(d1, d2, 32) != 0);
        T(f->C_SignInit(s, &cmac, k) != CKR_OK);
        T(f->C_Sign(s, msg, sizeof msg, mac, &mlen) != CKR_OK);
        T(f->C_VerifyInit(s, &cmac, k) != CKR_OK);
        T(f->C_Verify(s, msg, sizeof msg, mac, mlen) != CKR_OK);
        CK_BYTE rnd[16];
        T(f->C_GenerateRandom(shared_session, rnd, sizeof rnd) != CKR_OK);
        CK_SESSION_INFO info;
        T(f->C_GetSessionInfo(shared_session, &info) != CKR_OK);
    }
    f->C_CloseSession(s);
    return NULL;
}

static void threads_with_own_and_shared_sessions_get_correct_results(CK_SESSION_HANDLE s) {
    shared_session = s;
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    int errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        errors += thread_errors[i];
        if (thread_errors[i]) printf("  thread %d: %d errors, first at line %d\n", i, thread_errors[i], first_error_line[i]);
    }
    CHECK("8 threads x 60 rounds, every result right", errors == 0);
}

/* ---- the table --------------------------------------------------------------------------------------------- */

typedef void (*rule_fn)(CK_SESSION_HANDLE);
struct rule {
    const char *name;
    rule_fn fn;
    int logged_in; /* run in a user-logged-in session, or with nobody logged in */
};
#define RULE(fn, logged_in) {#fn, fn, logged_in}

static const struct rule rules[] = {
    RULE(init_while_active_is_operation_active, 1),
    RULE(call_without_init_is_operation_not_initialized, 1),
    RULE(single_part_call_and_final_end_the_operation, 1),
    RULE(length_query_and_buffer_too_small_keep_the_operation, 1),
    RULE(failing_call_ends_the_operation, 1),
    RULE(mixing_single_and_multi_part_is_operation_active, 1),
    RULE(invalid_key_handle_in_crypto_init_is_key_handle_invalid, 1),
    RULE(bad_iv_is_mechanism_param_invalid, 1),
    RULE(wrong_key_type_is_key_type_inconsistent, 1),
    RULE(key_without_usage_attribute_is_key_function_not_permitted, 1),
    RULE(mechanism_outside_allowed_mechanisms_is_mechanism_invalid, 1),
    RULE(digest_key_digests_the_key_value_and_refuses_other_objects, 1),
    RULE(template_errors_have_their_codes, 1),
    RULE(unmodifiable_uncopyable_undestroyable_objects_are_action_prohibited, 1),
    RULE(one_way_attributes_only_change_their_way, 1),
    RULE(copy_object_applies_the_rules_of_set, 1),
    RULE(unextractable_key_cannot_be_wrapped, 1),
    RULE(wrap_template_restricts_what_a_key_wraps, 1),
    RULE(unwrap_template_is_applied_and_conflicts_are_template_inconsistent, 1),
    RULE(derive_template_and_concatenate_base_and_key, 1),
    RULE(threads_with_own_and_shared_sessions_get_correct_results, 1),
    RULE(login_is_shared_by_the_sessions_and_lost_with_the_last, 0),
    RULE(read_only_sessions_and_so_login_rules, 0),
    RULE(wrap_with_trusted_needs_a_trusted_wrapping_key, 0),
};

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODULE USER-PIN SO-PIN TOKEN-LABEL\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    user_pin = argv[2];
    so_pin = argv[3];
    token_label = argv[4];
    if (f->C_Initialize(NULL) != CKR_OK) return 2;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        rule = rules[i].name;
        CK_SESSION_HANDLE s = 0;
        if (rules[i].logged_in) {
            s = open_session(CKF_RW_SESSION);
            EXPECT("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);
        }
        rules[i].fn(s);
        if (s) f->C_CloseSession(s); /* the last session: logs out and drops the rule's session objects */
    }
    f->C_Finalize(NULL);
    printf(failures ? "FAILED %d\n" : "ALL OK\n", failures);
    return failures ? 1 : 0;
}
