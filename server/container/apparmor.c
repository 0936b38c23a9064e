/* AppArmor fields of a container's security context: `apparmor` (a
 * SecurityProfile) and the deprecated `apparmor_profile` string, which is
 * read only when `apparmor` is absent (api.proto).
 *
 * On a host without AppArmor (this one: no /sys/module/apparmor), as
 * containerd does there: RuntimeDefault and Unconfined ask for nothing to
 * be applied and are accepted; a Localhost profile cannot be applied and is
 * refused with INVALID_ARGUMENT naming it, before anything is created. With
 * AppArmor enabled, a Localhost profile (a profile name loaded on the host)
 * goes to the OCI spec's apparmorProfile and Unconfined to "unconfined";
 * cricket ships no default profile, so RuntimeDefault applies none. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"

#define AA_FIELD "config.linux.security_context.apparmor"
#define AA_OLD_FIELD "config.linux.security_context.apparmor_profile"
#define AA_ENABLED_FILE "/sys/module/apparmor/parameters/enabled"

bool container_apparmor_enabled(void)
{
    cleanup_fclose FILE *f = fopen(AA_ENABLED_FILE, "re");
    return f && fgetc(f) == 'Y';
}

typedef enum { AA_DEFAULT, AA_UNCONFINED, AA_LOCALHOST } aa_kind_t;

/* The deprecated string: "", "runtime/default", "unconfined" or
 * "localhost/<profile>". */
static int parse_old(const char *s, aa_kind_t *kind, const char **name, cri_error_t *err)
{
    if (!s[0] || strcmp(s, "runtime/default") == 0) {
        *kind = AA_DEFAULT;
    } else if (strcmp(s, "unconfined") == 0) {
        *kind = AA_UNCONFINED;
    } else if (strncmp(s, "localhost/", 10) == 0 && s[10]) {
        *kind = AA_LOCALHOST;
        *name = s + 10;
    } else {
        return cri_error_set(err, EINVAL,
                             AA_OLD_FIELD " `%s`: want \"\", \"runtime/default\", "
                                          "\"unconfined\" or \"localhost/<profile>\"",
                             s);
    }
    return 0;
}

static int parse_profile(const Runtime__V1__SecurityProfile *p, aa_kind_t *kind, const char **name,
                         cri_error_t *err)
{
    switch (p->profile_type) {
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
        *kind = AA_DEFAULT;
        return 0;
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
        *kind = AA_UNCONFINED;
        return 0;
    case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
        if (!p->localhost_ref[0])
            return cri_error_set(err, EINVAL, AA_FIELD ".localhost_ref is empty");
        *kind = AA_LOCALHOST;
        *name = p->localhost_ref;
        return 0;
    default:
        return cri_error_set(err, EINVAL, AA_FIELD ".profile_type: invalid value %d",
                             (int)p->profile_type);
    }
}

int container_apparmor(const Runtime__V1__LinuxContainerSecurityContext *sc, bool host_enabled,
                       const char **ret_profile, cri_error_t *err)
{
    *ret_profile = NULL;
    if (!sc)
        return 0;
    aa_kind_t kind = AA_DEFAULT;
    const char *name = NULL;
    if (sc->apparmor ? parse_profile(sc->apparmor, &kind, &name, err) < 0
                     : parse_old(sc->apparmor_profile, &kind, &name, err) < 0)
        return -1;
    if (kind == AA_LOCALHOST && !host_enabled)
        return cri_error_set(err, EINVAL,
                             "%s: AppArmor is not enabled on this host: profile `%s` cannot be "
                             "applied (only RuntimeDefault or Unconfined)",
                             sc->apparmor ? AA_FIELD : AA_OLD_FIELD, name);
    if (host_enabled)
        *ret_profile = kind == AA_LOCALHOST ? name : kind == AA_UNCONFINED ? "unconfined" : NULL;
    return 0;
}
