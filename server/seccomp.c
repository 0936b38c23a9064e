/* CRI seccomp -> OCI. See seccomp.h. */
#include "server/seccomp.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

#define LOCALHOST_PREFIX "localhost/"

static int from_profile(const Runtime__V1__SecurityProfile *p, const char *field,
                        oci_seccomp_kind_t *ret_kind, const char **ret_path, cri_error_t *err)
{
    switch (p->profile_type) {
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
        *ret_kind = OCI_SECCOMP_RUNTIME_DEFAULT;
        return 0;
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
        *ret_kind = OCI_SECCOMP_UNCONFINED;
        return 0;
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
        if (!p->localhost_ref || p->localhost_ref[0] != '/')
            return cri_error_set(err, EINVAL,
                                 "%s.seccomp.localhost_ref `%s` is not an absolute path", field,
                                 p->localhost_ref ? p->localhost_ref : "");
        *ret_kind = OCI_SECCOMP_LOCALHOST;
        *ret_path = p->localhost_ref;
        return 0;
    default:
        return cri_error_set(err, EINVAL, "%s.seccomp.profile_type: invalid %d", field,
                             (int)p->profile_type);
    }
}

int seccomp_from_cri(const Runtime__V1__SecurityProfile *profile, const char *deprecated_path,
                     bool privileged, oci_seccomp_kind_t unset, const char *field,
                     oci_seccomp_kind_t *ret_kind, const char **ret_path, cri_error_t *err)
{
    oci_seccomp_kind_t kind = unset;
    const char *path = NULL;
    const char *s = deprecated_path ? deprecated_path : "";
    if (privileged || (!profile && strcmp(s, "unconfined") == 0)) {
        kind = OCI_SECCOMP_UNCONFINED;
    } else if (profile) {
        if (from_profile(profile, field, &kind, &path, err) < 0)
            return -1;
    } else if (!s[0]) {
        kind = unset;
    } else if (strcmp(s, "runtime/default") == 0 || strcmp(s, "docker/default") == 0) {
        kind = OCI_SECCOMP_RUNTIME_DEFAULT;
    } else if (str_has_prefix(s, LOCALHOST_PREFIX) && s[strlen(LOCALHOST_PREFIX)] == '/') {
        kind = OCI_SECCOMP_LOCALHOST;
        path = s + strlen(LOCALHOST_PREFIX);
    } else {
        return cri_error_set(err, EINVAL,
                             "%s.seccomp_profile_path `%s`: expected unconfined, runtime/default "
                             "or localhost/<absolute path>",
                             field, s);
    }
    *ret_kind = kind;
    *ret_path = path;
    return 0;
}
