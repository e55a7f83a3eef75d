/* The replay's database metadata and software keystores (formats in tde_files.h), with libcrypto's AES. */
#include "tde_files.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KDF_ITERATIONS 100000

void hex_encode(const unsigned char *in, size_t len, char *out) {
    for (size_t i = 0; i < len; i++) sprintf(out + 2 * i, "%02X", in[i]);
    out[2 * len] = 0;
}

int hex_decode(const char *in, unsigned char *out, size_t max) {
    size_t n = strlen(in);
    if (n % 2 || n / 2 > max) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int byte;
        if (sscanf(in + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (unsigned char)byte;
    }
    return (int)(n / 2);
}

void random_bytes(unsigned char *out, size_t len) {
    if (RAND_bytes(out, (int)len) != 1) {
        fprintf(stderr, "RAND_bytes failed\n");
        exit(2);
    }
}

void auto_login_password(char *out, size_t size) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(out, size, "pyhsm-local-auto-login:%s", host);
}

int software_aes_cbc(int encrypt, int pad, const unsigned char key[32], const unsigned char iv[16],
                     const unsigned char *in, size_t in_len, unsigned char *out) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, last = 0;
    int ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv, encrypt) == 1 &&
             EVP_CIPHER_CTX_set_padding(ctx, pad) == 1 && EVP_CipherUpdate(ctx, out, &len, in, (int)in_len) == 1 &&
             EVP_CipherFinal_ex(ctx, out + len, &last) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? len + last : -1;
}

int db_load(const char *path, database *db) {
    memset(db, 0, sizeof *db);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0; /* no database yet: a new one */
    char line[512], iv[64], ct[128];
    int bad = 0;
    while (fgets(line, sizeof line, fp)) {
        tek_row *r = &db->rows[db->n_rows];
        if (!strncmp(line, "mk ", 3) && db->n_master_keys < MAX_KEYS) {
            master_key_ref *k = &db->master_keys[db->n_master_keys++];
            bad |= sscanf(line, "mk %7s %34s", k->store, k->id) != 2;
        } else if (!strncmp(line, "tek ", 4) && db->n_rows < MAX_ROWS) {
            bad |= sscanf(line, "tek %63s %7s %34s %7s %63s %127s", r->name, r->store, r->key_id, r->mech, iv, ct) != 6;
            bad |= hex_decode(iv, r->iv, sizeof r->iv) != 16;
            int n = hex_decode(ct, r->ct, sizeof r->ct);
            bad |= n <= 0;
            r->ct_len = n > 0 ? (size_t)n : 0;
            db->n_rows++;
        } else if (line[0] != '\n') {
            bad = 1;
        }
    }
    fclose(fp);
    if (bad) fprintf(stderr, "%s: malformed database file\n", path);
    return bad;
}

static void format_row(const tek_row *r, char *line, size_t size) {
    char iv[33], ct[97];
    hex_encode(r->iv, sizeof r->iv, iv);
    hex_encode(r->ct, r->ct_len, ct);
    snprintf(line, size, "tek %s %s %s %s %s %s\n", r->name, r->store, r->key_id, r->mech, iv, ct);
}

int db_save(const char *path, const database *db) {
    char tmp[4096], line[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) return perror(tmp), 1;
    for (int i = 0; i < db->n_master_keys; i++) fprintf(fp, "mk %s %s\n", db->master_keys[i].store, db->master_keys[i].id);
    for (int i = 0; i < db->n_rows; i++) {
        format_row(&db->rows[i], line, sizeof line);
        fputs(line, fp);
    }
    if (fclose(fp) || rename(tmp, path)) return perror(path), 1;
    return 0;
}

int db_append_row(const char *path, const tek_row *row) {
    char line[512];
    format_row(row, line, sizeof line);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0) return perror(path), 1;
    ssize_t n = write(fd, line, strlen(line));
    close(fd);
    return n != (ssize_t)strlen(line);
}

static int wallet_key(const char *password, const unsigned char salt[16], int iterations, unsigned char key[32]) {
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, 16, iterations, EVP_sha256(), 32, key) != 1;
}

int wallet_open(const char *path, const char *password, wallet *w) {
    memset(w, 0, sizeof *w);
    FILE *fp = fopen(path, "r");
    if (!fp) return perror(path), 1;
    char line[1024], salt_hex[64], iv_hex[64], ct_hex[512];
    unsigned char salt[16], key[32], iv[16], ct[256];
    int iterations = 0, bad = 0;
    if (!fgets(line, sizeof line, fp) || sscanf(line, "pyhsm-test-wallet 1 %d %63s", &iterations, salt_hex) != 2 ||
        hex_decode(salt_hex, salt, sizeof salt) != 16 || wallet_key(password, salt, iterations, key))
        bad = 1;
    while (!bad && w->n < MAX_KEYS && fgets(line, sizeof line, fp)) {
        wallet_entry *e = &w->entries[w->n++];
        int n = -1;
        bad |= sscanf(line, "%7s %127s %63s %511s", e->kind, e->name, iv_hex, ct_hex) != 4 ||
               hex_decode(iv_hex, iv, sizeof iv) != 16 || (n = hex_decode(ct_hex, ct, sizeof ct)) <= 0 ||
               (size_t)n > sizeof e->value;
        if (!bad) n = software_aes_cbc(0, 1, key, iv, ct, (size_t)n, e->value);
        bad |= n < 0;  /* a wrong password shows as bad padding (or, rarely, as garbage a later check catches) */
        e->len = n > 0 ? (size_t)n : 0;
    }
    fclose(fp);
    OPENSSL_cleanse(key, sizeof key);
    if (bad) fprintf(stderr, "%s: cannot open the keystore (wrong password or malformed file)\n", path);
    return bad;
}

int wallet_save(const char *path, const char *password, const wallet *w) {
    unsigned char salt[16], key[32], iv[16], ct[256];
    char tmp[4096], hex[600], iv_hex[33];
    random_bytes(salt, sizeof salt);
    if (wallet_key(password, salt, KDF_ITERATIONS, key)) return 1;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *fp = fd < 0 ? NULL : fdopen(fd, "w");
    if (!fp) return perror(tmp), 1;
    hex_encode(salt, sizeof salt, hex);
    fprintf(fp, "pyhsm-test-wallet 1 %d %s\n", KDF_ITERATIONS, hex);
    for (int i = 0; i < w->n; i++) {
        const wallet_entry *e = &w->entries[i];
        random_bytes(iv, sizeof iv);
        int n = software_aes_cbc(1, 1, key, iv, e->value, e->len, ct);
        hex_encode(iv, sizeof iv, iv_hex);
        hex_encode(ct, (size_t)n, hex);
        fprintf(fp, "%s %s %s %s\n", e->kind, e->name, iv_hex, hex);
    }
    OPENSSL_cleanse(key, sizeof key);
    if (fclose(fp) || rename(tmp, path)) return perror(path), 1;
    return 0;
}

const wallet_entry *wallet_find(const wallet *w, const char *kind, const char *name) {
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].kind, kind) && !strcmp(w->entries[i].name, name)) return &w->entries[i];
    return NULL;
}
