/* TLS for the streaming server: the PEM files read at startup and handed to
 * libmicrohttpd (GnuTLS underneath), and the client certificate check.
 *
 * libmicrohttpd only *requests* a client certificate when given a trust
 * list (GNUTLS_CERT_REQUEST), so a client without one still completes the
 * handshake; streaming_tls_client_ok() is what refuses it, before any token
 * is looked at (as systemd-journal-remote does with the same library). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"

/* A PEM file larger than this is refused (a chain of a few certs is ~10 KiB). */
#define TLS_MAX_PEM ((size_t)1 << 20)

void streaming_tls_free(streaming_tls_t *t)
{
    if (!t)
        return;
    if (t->key) {
        explicit_bzero(t->key, strlen(t->key));
        free(t->key);
    }
    free(t->cert);
    free(t->client_ca);
    free(t);
}

static int read_pem(const char *key, const char *path, char **ret, cri_error_t *err)
{
    cleanup_free char *data = NULL;
    if (read_file(path, TLS_MAX_PEM, &data, NULL, err) < 0)
        return cri_error_wrap(err, "read %s", key);
    if (!strstr(data, "-----BEGIN "))
        return cri_error_set(err, EINVAL, "read %s: `%s` is not a PEM file", key, path);
    *ret = TAKE_PTR(data);
    return 0;
}

/* Loads t into GnuTLS credentials the way libmicrohttpd will, so that a key
 * that does not match its certificate, or an unreadable CA, fails here with
 * GnuTLS's own words instead of as an anonymous MHD_start_daemon() failure. */
static int check_with_gnutls(const streaming_tls_t *t, cri_error_t *err)
{
    gnutls_certificate_credentials_t cred = NULL;
    int rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc < 0)
        return cri_error_set(err, ENOMEM, "tls: %s", gnutls_strerror(rc));
    gnutls_datum_t cert = {(unsigned char *)t->cert, (unsigned int)strlen(t->cert)};
    gnutls_datum_t key = {(unsigned char *)t->key, (unsigned int)strlen(t->key)};
    rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        gnutls_certificate_free_credentials(cred);
        return cri_error_set(err, EINVAL, "tls: load streaming.tls_cert and streaming.tls_key: %s",
                             gnutls_strerror(rc));
    }
    if (t->client_ca) {
        gnutls_datum_t ca = {(unsigned char *)t->client_ca, (unsigned int)strlen(t->client_ca)};
        rc = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            gnutls_certificate_free_credentials(cred);
            return cri_error_set(err, EINVAL, "tls: load streaming.tls_client_ca: %s",
                                 rc < 0 ? gnutls_strerror(rc) : "no certificate in it");
        }
    }
    gnutls_certificate_free_credentials(cred);
    return 0;
}

int streaming_tls_load(const char *cert, const char *key, const char *client_ca,
                       streaming_tls_t **ret, cri_error_t *err)
{
    *ret = NULL;
    bool have_cert = cert && *cert, have_key = key && *key, have_ca = client_ca && *client_ca;
    if (!have_cert && !have_key && !have_ca)
        return 0;
    if (!have_cert || !have_key)
        return cri_error_set(err, EINVAL,
                             "tls: streaming.tls_cert and streaming.tls_key must both "
                             "be set (tls_client_ca needs them)");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return cri_error_set(err, ENOTSUP,
                             "tls: this libmicrohttpd is built without TLS (GnuTLS); unset "
                             "streaming.tls_cert and streaming.tls_key or use one with TLS");
    streaming_tls_t *t = xcalloc(1, sizeof(*t));
    if (read_pem("streaming.tls_cert", cert, &t->cert, err) < 0 ||
        read_pem("streaming.tls_key", key, &t->key, err) < 0 ||
        (have_ca && read_pem("streaming.tls_client_ca", client_ca, &t->client_ca, err) < 0) ||
        check_with_gnutls(t, err) < 0) {
        streaming_tls_free(t);
        return -1;
    }
    *ret = t;
    return 0;
}

size_t streaming_tls_options(const streaming_tls_t *t, struct MHD_OptionItem *opts, size_t n)
{
    size_t i = 0;
    if (!t || n < 3)
        return 0;
    opts[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key};
    opts[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert};
    if (t->client_ca)
        opts[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, t->client_ca};
    return i;
}

bool streaming_tls_client_ok(const streaming_tls_t *t, struct MHD_Connection *conn)
{
    if (!t || !t->client_ca)
        return true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return false;
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509)
        return false;
    unsigned int n = 0;
    if (!gnutls_certificate_get_peers(session, &n) || n == 0)
        return false; /* no certificate presented */
    /* chain to the trust list (the client CA), validity dates, and a key
     * usable for TLS client authentication */
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
    unsigned int status = 0;
    if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0)
        return false;
    return status == 0;
}
