/*
 * Mechanism families driven from a non-Python host. Usage: mechanisms MODULE PIN TOKEN-LABEL SCENARIO [ARGS...]
 * Each scenario runs the mechanism through the C ABI, checks what it can check by itself against known answers
 * ("ok NAME" / "FAIL NAME: ..."), and prints values for independent verification as "out NAME HEX"; the pytest
 * side (tests/test_mech_c_host.py) checks those with pyca/cryptography or openssl.
 */
#include "common.h"

static CK_BBOOL yes = 1, no = 0;
static CK_SESSION_HANDLE s;

static void out(const char *name, const CK_BYTE *data, CK_ULONG len) {
    printf("out %s ", name);
    for (CK_ULONG i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\n");
}

static CK_OBJECT_HANDLE secret_key(CK_ULONG key_type, const CK_BYTE *value, CK_ULONG len) {
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
        {CKA_VALUE, (void *)value, len}, {CKA_EXTRACTABLE, &yes, 1}, {CKA_SENSITIVE, &no, 1},
        {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1}, {CKA_WRAP, &yes, 1}, {CKA_UNWRAP, &yes, 1},
        {CKA_SIGN, &yes, 1}, {CKA_VERIFY, &yes, 1}, {CKA_DERIVE, &yes, 1},
    };
    CK_OBJECT_HANDLE h = 0;
    expect("C_CreateObject secret key", f->C_CreateObject(s, t, sizeof t / sizeof t[0], &h), CKR_OK);
    return h;
}

/* ---- DES3 ----------------------------------------------------------------------------------------------- */
static void des3(void) {
    /* SP 800-67 Rev. 2 appendix B: three-key TDEA, ECB. */
    static const CK_BYTE key[24] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x23, 0x45, 0x67, 0x89,
                                    0xab, 0xcd, 0xef, 0x01, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23};
    static const CK_BYTE want[24] = {0xa8, 0x26, 0xfd, 0x8c, 0xe5, 0x3b, 0x85, 0x5f, 0xcc, 0xe2, 0x1c, 0x81,
                                     0x12, 0x25, 0x6f, 0xe6, 0x68, 0xd5, 0xc0, 0x5d, 0xd9, 0xb6, 0xb9, 0x00};
    CK_OBJECT_HANDLE k = secret_key(CKK_DES3, key, sizeof key);
    CK_MECHANISM ecb = {CKM_DES3_ECB, NULL, 0};
    CK_BYTE buf[64];
    CK_ULONG n = sizeof buf;
    expect("C_EncryptInit DES3_ECB", f->C_EncryptInit(s, &ecb, k), CKR_OK);
    expect("C_Encrypt DES3_ECB", f->C_Encrypt(s, (CK_BYTE_PTR) "The qufck brown fox jump", 24, buf, &n), CKR_OK);
    check("DES3_ECB known answer (SP 800-67)", n == 24 && !memcmp(buf, want, 24));
    /* CBC_PAD, multi-part, to be checked by openssl enc. */
    CK_BYTE iv[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    CK_MECHANISM cbc_pad = {CKM_DES3_CBC_PAD, iv, sizeof iv};
    CK_BYTE ct[64];
    CK_ULONG total = 0, part;
    expect("C_EncryptInit DES3_CBC_PAD", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    const char *msg = "multi-part 3DES from C";
    for (int i = 0; i < 22; i += 5) {
        part = sizeof ct - total;
        expect("C_EncryptUpdate", f->C_EncryptUpdate(s, (CK_BYTE_PTR)msg + i, i + 5 > 22 ? 22 - i : 5, ct + total,
                                                     &part), CKR_OK);
        total += part;
    }
    part = sizeof ct - total;
    expect("C_EncryptFinal", f->C_EncryptFinal(s, ct + total, &part), CKR_OK);
    total += part;
    check("CBC_PAD output is 3 blocks", total == 24);
    out("des3_cbc_pad", ct, total);
    CK_BYTE bad_iv[16] = {0};
    CK_MECHANISM bad = {CKM_DES3_CBC, bad_iv, sizeof bad_iv};
    expect("DES3_CBC with a 16-byte IV", f->C_EncryptInit(s, &bad, k), CKR_MECHANISM_PARAM_INVALID);
}

/* ---- RSA-AES key wrap and the CloudHSM mechanisms ----------------------------------------------------------- */
static void rsa_aes_wrap(const char *pub_label) {
    CK_OBJECT_HANDLE pub = find(s, CKO_PUBLIC_KEY, pub_label);
    check("RSA public key found", pub != 0);
    static const CK_BYTE value[32] = "an AES-256 key wrapped from C!!";
    CK_OBJECT_HANDLE target = secret_key(CKK_AES, value, sizeof value);
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_RSA_AES_KEY_WRAP_PARAMS params = {256, &oaep};
    CK_MECHANISM mech = {CKM_RSA_AES_KEY_WRAP, &params, sizeof params};
    CK_BYTE wrapped[1024];
    CK_ULONG n = 0;
    expect("C_WrapKey length query", f->C_WrapKey(s, &mech, pub, target, NULL, &n), CKR_OK);
    expect("C_WrapKey", f->C_WrapKey(s, &mech, pub, target, wrapped, &n), CKR_OK);
    out("rsa_aes_wrapped", wrapped, n);
    params.ulAESKeyBits = 100;
    expect("ulAESKeyBits 100", f->C_WrapKey(s, &mech, pub, target, wrapped, &n), CKR_MECHANISM_PARAM_INVALID);
}

static void cloudhsm(void) {
    static const CK_BYTE kek_value[32] = "0123456789abcdef0123456789abcdef";
    CK_OBJECT_HANDLE kek = secret_key(CKK_AES, kek_value, sizeof kek_value);
    CK_GCM_PARAMS gcm = {NULL, 12, 96, (CK_BYTE_PTR) "aad", 3, 128};
    CK_MECHANISM mech = {CKM_CLOUDHSM_AES_GCM, &gcm, sizeof gcm};
    CK_BYTE buf[128], plain[128];
    CK_ULONG n = sizeof buf, m = sizeof plain;
    expect("C_EncryptInit CLOUDHSM_AES_GCM", f->C_EncryptInit(s, &mech, kek), CKR_OK);
    expect("C_Encrypt CLOUDHSM_AES_GCM", f->C_Encrypt(s, (CK_BYTE_PTR) "cloudhsm gcm", 12, buf, &n), CKR_OK);
    check("IV || ciphertext || tag", n == 12 + 12 + 16);
    out("cloudhsm_gcm", buf, n);
    expect("C_DecryptInit CLOUDHSM_AES_GCM", f->C_DecryptInit(s, &mech, kek), CKR_OK);
    expect("C_Decrypt CLOUDHSM_AES_GCM", f->C_Decrypt(s, buf, n, plain, &m), CKR_OK);
    check("round trip", m == 12 && !memcmp(plain, "cloudhsm gcm", 12));
    CK_BYTE iv[12] = {0};
    gcm.pIv = iv;
    expect("pIv not NULL", f->C_EncryptInit(s, &mech, kek), CKR_MECHANISM_PARAM_INVALID);

    static const CK_BYTE secret[20] = "twenty byte secret!";
    CK_OBJECT_HANDLE target = secret_key(CKK_GENERIC_SECRET, secret, sizeof secret);
    CK_MECHANISM zero_pad = {CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, NULL, 0};
    n = sizeof buf;
    expect("C_WrapKey ZERO_PAD", f->C_WrapKey(s, &zero_pad, kek, target, buf, &n), CKR_OK);
    out("zero_pad_wrapped", buf, n);
    CK_MECHANISM no_pad = {CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, NULL, 0};
    expect("NO_PAD of a 20-byte key", f->C_WrapKey(s, &no_pad, kek, target, buf, &n), CKR_KEY_SIZE_RANGE);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODULE PIN TOKEN-LABEL SCENARIO [ARGS]\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    token_label = argv[3];
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID slot = token_slot();
    expect("C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2])), CKR_OK);
    const char *scenario = argv[4];
    if (!strcmp(scenario, "des3")) des3();
    else if (!strcmp(scenario, "rsa-aes-wrap") && argc > 5) rsa_aes_wrap(argv[5]);
    else if (!strcmp(scenario, "cloudhsm")) cloudhsm();
    else {
        fprintf(stderr, "unknown scenario %s\n", scenario);
        return 2;
    }
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    if (!failures) printf("ALL OK\n");
    return failures ? 1 : 0;
}
