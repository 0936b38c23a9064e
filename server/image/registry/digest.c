/* sha256 digests (OpenSSL EVP) and layer chain ids. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/util.h"
#include "server/image/registry/registry.h"

struct image_hasher {
    EVP_MD_CTX *ctx;
};

image_hasher_t *image_hasher_new(void)
{
    image_hasher_t *h = xcalloc(1, sizeof(*h));
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
        abort(); /* only on OOM */
    return h;
}

void image_hasher_update(image_hasher_t *h, const void *data, size_t len)
{
    if (len)
        EVP_DigestUpdate(h->ctx, data, len);
}

void image_hasher_final(image_hasher_t *h, char out[IMAGE_DIGEST_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n && i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[IMAGE_DIGEST_LEN] = '\0';
}

void image_hasher_free(image_hasher_t *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void image_digest_of(const void *data, size_t len, char out[IMAGE_DIGEST_LEN + 1])
{
    image_hasher_t *h = image_hasher_new();
    image_hasher_update(h, data, len);
    image_hasher_final(h, out);
    image_hasher_free(h);
}

void image_chain_id(const char *parent, const char *diff_id, char out[IMAGE_DIGEST_LEN + 1])
{
    if (!parent || !*parent) {
        (void)snprintf(out, IMAGE_DIGEST_LEN + 1, "%s", diff_id);
        return;
    }
    image_hasher_t *h = image_hasher_new();
    image_hasher_update(h, parent, strlen(parent));
    image_hasher_update(h, " ", 1);
    image_hasher_update(h, diff_id, strlen(diff_id));
    image_hasher_final(h, out);
    image_hasher_free(h);
}
