/*
 * Key ownership rules from a non-Python host: one process logged in as one crypto user ("name:password").
 * Usage: users MODULE TOKEN-LABEL PIN SCENARIO KEY-LABEL [ARG]
 *   owner    KEY-LABEL OWNER     the key is visible; CKA_PYHSM_OWNER reads OWNER; the vendor attributes are read-only
 *   shared   KEY-LABEL OWNER     a key shared with us: usable (AES-CBC-PAD encrypt/decrypt) but not destroyable,
 *                                modifiable, copyable or wrappable by us
 *   stranger KEY-LABEL HANDLE    someone else's unshared key: not found, and its handle does not exist for us
 *   admin    KEY-LABEL -         logged in as an admin (PIN is the SO's): a key the admin may see is never usable
 * Prints "ok <check>" / "FAIL <check>: ..." lines; the exit status counts failures.
 */
#include "common.h"

static CK_BBOOL yes = 1, no = 0;
static CK_BYTE iv[16] = "fedcba9876543210";
static CK_MECHANISM cbc_pad = {CKM_AES_CBC_PAD, iv, sizeof iv};

static void check_owner(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, const char *owner) {
    char value[64] = {0};
    CK_ATTRIBUTE a = {CKA_PYHSM_OWNER, value, sizeof value - 1};
    expect("C_GetAttributeValue CKA_PYHSM_OWNER", f->C_GetAttributeValue(s, k, &a, 1), CKR_OK);
    check("the owner is the user who made the key", a.ulValueLen == strlen(owner) && !memcmp(value, owner, a.ulValueLen));
}

static int scenario_owner(CK_SESSION_HANDLE s, const char *label, const char *owner) {
    CK_OBJECT_HANDLE k = find(s, CKO_SECRET_KEY, label);
    check("the owner finds the key", k != 0);
    check_owner(s, k, owner);
    CK_ATTRIBUTE set_owner = {CKA_PYHSM_OWNER, "mallory", 7};
    expect("setting CKA_PYHSM_OWNER", f->C_SetAttributeValue(s, k, &set_owner, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE set_shared = {CKA_PYHSM_SHARED_USERS, "mallory", 7};
    expect("setting CKA_PYHSM_SHARED_USERS", f->C_SetAttributeValue(s, k, &set_shared, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ULONG cls = CKO_SECRET_KEY, type = CKK_AES;
    CK_BYTE value[16] = "0123456789abcdef";
    CK_ATTRIBUTE forged[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                             {CKA_VALUE, value, sizeof value}, {CKA_PYHSM_OWNER, "mallory", 7}};
    CK_OBJECT_HANDLE h;
    expect("creating a key with a chosen owner", f->C_CreateObject(s, forged, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
    return failures;
}

static int scenario_shared(CK_SESSION_HANDLE s, const char *label, const char *owner) {
    CK_OBJECT_HANDLE k = find(s, CKO_SECRET_KEY, label);
    check("a shared user finds the key", k != 0);
    check_owner(s, k, owner);
    CK_BYTE msg[32] = "a message for the shared AES key", ct[64], pt[64];
    CK_ULONG clen = sizeof ct, plen = sizeof pt;
    expect("C_EncryptInit with a shared key", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    expect("C_Encrypt with a shared key", f->C_Encrypt(s, msg, sizeof msg, ct, &clen), CKR_OK);
    expect("C_DecryptInit with a shared key", f->C_DecryptInit(s, &cbc_pad, k), CKR_OK);
    expect("C_Decrypt with a shared key", f->C_Decrypt(s, ct, clen, pt, &plen), CKR_OK);
    check("round trip", plen == sizeof msg && !memcmp(pt, msg, plen));
    expect("C_DestroyObject by a shared user", f->C_DestroyObject(s, k), CKR_ACTION_PROHIBITED);
    CK_ATTRIBUTE label_attr = {CKA_LABEL, "renamed", 7};
    expect("C_SetAttributeValue by a shared user", f->C_SetAttributeValue(s, k, &label_attr, 1), CKR_ACTION_PROHIBITED);
    CK_OBJECT_HANDLE copy;
    expect("C_CopyObject by a shared user", f->C_CopyObject(s, k, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
    /* Our own wrapping key, their key: exporting someone else's key is refused. */
    CK_ULONG cls = CKO_SECRET_KEY, type = CKK_AES, len = 32;
    CK_ATTRIBUTE kt[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                         {CKA_VALUE_LEN, &len, sizeof len}, {CKA_WRAP, &yes, 1}, {CKA_TOKEN, &no, 1}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE wrapper = 0;
    expect("generating our own wrapping key", f->C_GenerateKey(s, &gen, kt, 5, &wrapper), CKR_OK);
    CK_BYTE wrapped[128];
    CK_ULONG wlen = sizeof wrapped;
    expect("C_WrapKey of a shared key", f->C_WrapKey(s, &kw, wrapper, k, wrapped, &wlen), CKR_KEY_NOT_WRAPPABLE);
    check("the key is still there", find(s, CKO_SECRET_KEY, label) == k);
    return failures;
}

static int scenario_stranger(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE k) {
    check("another user's key is not found", find(s, CKO_SECRET_KEY, label) == 0);
    CK_ULONG cls;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
    expect("C_GetAttributeValue on its handle", f->C_GetAttributeValue(s, k, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    expect("C_EncryptInit with its handle", f->C_EncryptInit(s, &cbc_pad, k), CKR_KEY_HANDLE_INVALID);
    expect("C_DestroyObject on its handle", f->C_DestroyObject(s, k), CKR_OBJECT_HANDLE_INVALID);
    return failures;
}

static int scenario_admin(CK_SESSION_HANDLE s, const char *label) {
    /* A public AES key the admin made itself (it belongs to the token): visible, but not for an admin to use. */
    CK_ULONG cls = CKO_SECRET_KEY, type = CKK_AES;
    CK_BYTE value[16] = "0123456789abcdef";
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                        {CKA_VALUE, value, sizeof value}, {CKA_PRIVATE, &no, 1},
                        {CKA_LABEL, (void *)label, strlen(label)}, {CKA_DERIVE, &yes, 1}};
    CK_OBJECT_HANDLE k = 0, out = 0;
    expect("the admin creates a public key", f->C_CreateObject(s, t, 6, &k), CKR_OK);
    check("the admin sees it", find(s, CKO_SECRET_KEY, label) == k);
    CK_MECHANISM cmac = {CKM_AES_CMAC, NULL, 0}, sha = {CKM_SHA256, NULL, 0}, kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    expect("C_EncryptInit as admin", f->C_EncryptInit(s, &cbc_pad, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
    expect("C_DecryptInit as admin", f->C_DecryptInit(s, &cbc_pad, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
    expect("C_SignInit as admin", f->C_SignInit(s, &cmac, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
    expect("C_VerifyInit as admin", f->C_VerifyInit(s, &cmac, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
    expect("C_DigestInit", f->C_DigestInit(s, &sha), CKR_OK);
    expect("C_DigestKey as admin", f->C_DigestKey(s, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_BYTE wrapped[64];
    CK_ULONG wlen = sizeof wrapped;
    expect("C_WrapKey as admin", f->C_WrapKey(s, &kw, k, k, wrapped, &wlen), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_ULONG generic = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE dt[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &generic, sizeof generic}, {CKA_PRIVATE, &no, 1}};
    CK_MECHANISM derive = {CKM_CONCATENATE_BASE_AND_KEY, &k, sizeof k};
    expect("C_DeriveKey as admin", f->C_DeriveKey(s, &derive, k, dt, 3, &out), CKR_KEY_FUNCTION_NOT_PERMITTED);
    expect("the admin destroys its own key", f->C_DestroyObject(s, k), CKR_OK);
    return failures;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s MODULE TOKEN-LABEL PIN SCENARIO KEY-LABEL ARG\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    token_label = argv[2];
    const char *pin = argv[3], *scenario = argv[4], *label = argv[5], *arg = argv[6];
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SESSION_HANDLE s = 0;
    expect("C_OpenSession", f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CK_USER_TYPE who = strcmp(scenario, "admin") ? CKU_USER : CKU_SO;
    expect("C_Login name:password", f->C_Login(s, who, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    if (!strcmp(scenario, "owner")) scenario_owner(s, label, arg);
    else if (!strcmp(scenario, "shared")) scenario_shared(s, label, arg);
    else if (!strcmp(scenario, "admin")) scenario_admin(s, label);
    else if (!strcmp(scenario, "stranger")) scenario_stranger(s, label, (CK_OBJECT_HANDLE)strtoul(arg, NULL, 10));
    else return 2;
    f->C_Logout(s);
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    if (!failures) printf("ALL OK\n");
    return failures;
}
