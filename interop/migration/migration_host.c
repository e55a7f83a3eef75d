/*
 * Key migration between tokens through the module's C ABI: wrap a key out of one token, unwrap it into another.
 * Usage:
 *   migration_host MODULE TOKEN PIN wrap MECH WRAPPING-LABEL KEY-LABEL OUT-FILE
 *   migration_host MODULE TOKEN PIN unwrap MECH UNWRAPPING-LABEL CLASS KEY-TYPE NEW-LABEL IN-FILE [ID-HEX]
 *   migration_host MODULE TOKEN PIN encrypt|decrypt des3-cbc KEY-LABEL IV-HEX IN-FILE OUT-FILE
 * MECH: rsa-oaep-sha256 (CKM_RSA_PKCS_OAEP, SHA-256, MGF1-SHA-256: the KMS import format) or rsa-aes
 * (CKM_RSA_AES_KEY_WRAP: a fresh AES-256 key under RSA-OAEP-SHA256, the payload under it with RFC 5649); des3-cbc
 * (CKM_DES3_CBC, IV given) to show that a moved key still decrypts what it encrypted. CLASS: private|secret; KEY-TYPE: rsa|ec|aes|des3. Keys are found by label;
 * the unwrapped key is a sensitive, non-extractable token key with the usages of its class.
 * Prints "ok"/"FAIL" lines, then "ALL OK" or exits 1.
 */
#include "common.h"

#define CK_TRUE 1
#define CK_FALSE 0

static CK_RSA_PKCS_OAEP_PARAMS oaep_sha256 = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
static CK_RSA_AES_KEY_WRAP_PARAMS rsa_aes = {256, &oaep_sha256};

static unsigned char iv[8];

static int hex_to_bytes(const char *hex, unsigned char *out, size_t max, CK_ULONG *len) {
    for (*len = 0; hex && hex[2 * *len]; (*len)++) {
        unsigned int byte;
        if (*len == max || sscanf(hex + 2 * *len, "%2x", &byte) != 1) return 1;
        out[*len] = (unsigned char)byte;
    }
    return 0;
}

static int read_file(const char *path, unsigned char *buf, size_t max, CK_ULONG *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return perror(path), 1;
    *len = fread(buf, 1, max, fp);
    fclose(fp);
    return 0;
}

static void write_file(const char *path, const unsigned char *buf, CK_ULONG len) {
    FILE *fp = fopen(path, "wb");
    check("output written", fp && fwrite(buf, 1, len, fp) == len && fclose(fp) == 0);
}

static int mechanism_of(const char *name, CK_MECHANISM *m) {
    if (!strcmp(name, "des3-cbc")) {
        *m = (CK_MECHANISM){CKM_DES3_CBC, iv, sizeof iv};
    } else if (!strcmp(name, "rsa-oaep-sha256")) {
        *m = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &oaep_sha256, sizeof oaep_sha256};
    } else if (!strcmp(name, "rsa-aes")) {
        *m = (CK_MECHANISM){CKM_RSA_AES_KEY_WRAP, &rsa_aes, sizeof rsa_aes};
    } else {
        return fprintf(stderr, "unknown mechanism %s\n", name), 1;
    }
    return 0;
}

/* The first object with this label among the classes given (a wrapping key is public or secret, ...). */
static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s, const char *label, CK_ULONG class1, CK_ULONG class2) {
    CK_OBJECT_HANDLE h = find(s, class1, label);
    return h ? h : find(s, class2, label);
}

static int wrap(CK_SESSION_HANDLE s, CK_MECHANISM *m, const char *wrapping, const char *payload, const char *path) {
    CK_OBJECT_HANDLE wk = find_key(s, wrapping, CKO_PUBLIC_KEY, CKO_SECRET_KEY);
    CK_OBJECT_HANDLE key = find_key(s, payload, CKO_PRIVATE_KEY, CKO_SECRET_KEY);
    check("wrapping key found", wk != 0);
    check("payload key found", key != 0);
    CK_ULONG len = 0;
    expect("C_WrapKey length query", f->C_WrapKey(s, m, wk, key, NULL, &len), CKR_OK);
    unsigned char *out = malloc(len ? len : 1);
    expect("C_WrapKey", f->C_WrapKey(s, m, wk, key, out, &len), CKR_OK);
    write_file(path, out, len);
    printf("wrapped %lu bytes\n", len);
    free(out);
    return 0;
}

static int unwrap(CK_SESSION_HANDLE s, CK_MECHANISM *m, const char *unwrapping, const char *cls_name,
                  const char *type_name, const char *label, const char *path, const char *id_hex) {
    static const struct { const char *name; CK_ULONG value; } types[] = {
        {"rsa", CKK_RSA}, {"ec", CKK_EC}, {"aes", CKK_AES}, {"des3", CKK_DES3}};
    CK_ULONG cls = strcmp(cls_name, "private") ? CKO_SECRET_KEY : CKO_PRIVATE_KEY, type = (CK_ULONG)-1;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(type_name, types[i].name)) type = types[i].value;
    if (type == (CK_ULONG)-1) return fprintf(stderr, "unknown key type %s\n", type_name), 2;
    unsigned char wrapped[16384], id[64];
    CK_ULONG n, id_len;
    if (read_file(path, wrapped, sizeof wrapped, &n) || hex_to_bytes(id_hex, id, sizeof id, &id_len)) return 2;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[12] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                          {CKA_LABEL, (void *)label, strlen(label)}, {CKA_TOKEN, &yes, 1},
                          {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1}, {CKA_EXTRACTABLE, &no, 1}};
    CK_ULONG count = 7;
    if (cls == CKO_PRIVATE_KEY) {
        t[count++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, 1};
    } else {
        t[count++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &yes, 1};
        t[count++] = (CK_ATTRIBUTE){CKA_DECRYPT, &yes, 1};
    }
    if (id_len) t[count++] = (CK_ATTRIBUTE){CKA_ID, id, id_len};
    CK_OBJECT_HANDLE uk = find_key(s, unwrapping, CKO_PRIVATE_KEY, CKO_SECRET_KEY), key = 0;
    check("unwrapping key found", uk != 0);
    expect("C_UnwrapKey", f->C_UnwrapKey(s, m, uk, wrapped, n, t, count, &key), CKR_OK);
    CK_BBOOL local = CK_TRUE, sensitive = CK_FALSE;
    CK_ATTRIBUTE read[] = {{CKA_LOCAL, &local, 1}, {CKA_SENSITIVE, &sensitive, 1}};
    expect("C_GetAttributeValue", f->C_GetAttributeValue(s, key, read, 2), CKR_OK);
    check("unwrapped key: not CKA_LOCAL, sensitive", local == CK_FALSE && sensitive == CK_TRUE);
    return 0;
}

/* Single-part C_Encrypt or C_Decrypt of a whole file with a secret key found by label. */
static int encrypt_or_decrypt(CK_SESSION_HANDLE s, CK_MECHANISM *m, int encrypt, const char *label, const char *in_path,
                 const char *out_path) {
    unsigned char in[4096], out[4096 + 64];
    CK_ULONG in_len, out_len = sizeof out;
    if (read_file(in_path, in, sizeof in, &in_len)) return 2;
    CK_OBJECT_HANDLE key = find(s, CKO_SECRET_KEY, label);
    check("key found", key != 0);
    if (encrypt) {
        expect("C_EncryptInit", f->C_EncryptInit(s, m, key), CKR_OK);
        expect("C_Encrypt", f->C_Encrypt(s, in, in_len, out, &out_len), CKR_OK);
    } else {
        expect("C_DecryptInit", f->C_DecryptInit(s, m, key), CKR_OK);
        expect("C_Decrypt", f->C_Decrypt(s, in, in_len, out, &out_len), CKR_OK);
    }
    write_file(out_path, out, out_len);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 9) return fprintf(stderr, "usage: see the comment at the top of migration_host.c\n"), 2;
    load_module(argv[1]);
    token_label = argv[2];
    const char *pin = argv[3], *command = argv[4];
    CK_MECHANISM m;
    if (mechanism_of(argv[5], &m)) return 2;
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SESSION_HANDLE s = 0;
    expect("C_OpenSession", f->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
           CKR_OK);
    expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    int rc;
    if (!strcmp(command, "wrap")) {
        rc = wrap(s, &m, argv[6], argv[7], argv[8]);
    } else if ((!strcmp(command, "encrypt") || !strcmp(command, "decrypt")) && argc >= 10) {
        CK_ULONG iv_len;
        if (hex_to_bytes(argv[7], iv, sizeof iv, &iv_len) || iv_len != sizeof iv) return 2;
        rc = encrypt_or_decrypt(s, &m, !strcmp(command, "encrypt"), argv[6], argv[8], argv[9]);
    } else if (!strcmp(command, "unwrap") && argc >= 11) {
        rc = unwrap(s, &m, argv[6], argv[7], argv[8], argv[9], argv[10], argc > 11 ? argv[11] : NULL);
    } else {
        return fprintf(stderr, "unknown command %s\n", command), 2;
    }
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    if (rc) return rc;
    if (failures) return printf("%d FAILED\n", failures), 1;
    printf("ALL OK\n");
    return 0;
}
