/* server/seccomp.c: the one CRI -> OCI seccomp mapping of pods' infra
 * containers and of containers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/seccomp.h"

enum { NONE = -1 };

static void test_mapping_table(void **state)
{
    enum {
        RD = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault,
        UC = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined,
        LH = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost,
    };
    static const struct {
        int type; /* NONE: no SecurityProfile */
        const char *ref, *deprecated;
        bool privileged;
        oci_seccomp_kind_t unset, want;
        const char *want_path; /* NULL: none; for errors, a part of the message */
        int want_err;
    } cases[] = {
        {NONE, "", "", false, OCI_SECCOMP_UNCONFINED, OCI_SECCOMP_UNCONFINED, NULL, 0},
        {NONE, "", "", false, OCI_SECCOMP_RUNTIME_DEFAULT, OCI_SECCOMP_RUNTIME_DEFAULT, NULL, 0},
        {NONE, "", "unconfined", false, OCI_SECCOMP_RUNTIME_DEFAULT, OCI_SECCOMP_UNCONFINED, NULL,
         0},
        {NONE, "", "runtime/default", false, OCI_SECCOMP_UNCONFINED, OCI_SECCOMP_RUNTIME_DEFAULT,
         NULL, 0},
        {NONE, "", "docker/default", false, OCI_SECCOMP_UNCONFINED, OCI_SECCOMP_RUNTIME_DEFAULT,
         NULL, 0},
        {NONE, "", "localhost//etc/p.json", false, OCI_SECCOMP_UNCONFINED, OCI_SECCOMP_LOCALHOST,
         "/etc/p.json", 0},
        {RD, "", "unconfined", false, OCI_SECCOMP_UNCONFINED, OCI_SECCOMP_RUNTIME_DEFAULT, NULL, 0},
        {UC, "", "", false, OCI_SECCOMP_RUNTIME_DEFAULT, OCI_SECCOMP_UNCONFINED, NULL, 0},
        {LH, "/p.json", "", false, OCI_SECCOMP_UNCONFINED, OCI_SECCOMP_LOCALHOST, "/p.json", 0},
        /* privileged wins over any profile, even a bad one */
        {LH, "rel", "", true, OCI_SECCOMP_RUNTIME_DEFAULT, OCI_SECCOMP_UNCONFINED, NULL, 0},
        {NONE, "", "docker/evil", true, OCI_SECCOMP_RUNTIME_DEFAULT, OCI_SECCOMP_UNCONFINED, NULL,
         0},
        /* errors name the field */
        {LH, "rel.json", "", false, OCI_SECCOMP_UNCONFINED, 0,
         "f.seccomp.localhost_ref `rel.json` is not an absolute path", EINVAL},
        {7, "", "", false, OCI_SECCOMP_UNCONFINED, 0, "f.seccomp.profile_type: invalid 7", EINVAL},
        {NONE, "", "/etc/x.json", false, OCI_SECCOMP_UNCONFINED, 0,
         "f.seccomp_profile_path `/etc/x.json`: expected", EINVAL},
        {NONE, "", "localhost/rel", false, OCI_SECCOMP_UNCONFINED, 0,
         "f.seccomp_profile_path `localhost/rel`", EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Runtime__V1__SecurityProfile prof;
        runtime__v1__security_profile__init(&prof);
        prof.profile_type = (Runtime__V1__SecurityProfile__ProfileType)cases[i].type;
        prof.localhost_ref = (char *)cases[i].ref;
        oci_seccomp_kind_t kind = (oci_seccomp_kind_t)99;
        const char *path = "untouched";
        cri_error_t err = CRI_ERROR_INIT;
        int rc = seccomp_from_cri(cases[i].type == NONE ? NULL : &prof, cases[i].deprecated,
                                  cases[i].privileged, cases[i].unset, "f", &kind, &path, &err);
        if (cases[i].want_err) {
            assert_int_equal(rc, -1);
            assert_int_equal(err.status, cases[i].want_err);
            assert_non_null(strstr(err.msg, cases[i].want_path));
            assert_int_equal(kind, 99); /* outputs untouched on failure */
            assert_string_equal(path, "untouched");
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(kind, cases[i].want);
        if (cases[i].want_path)
            assert_string_equal(path, cases[i].want_path);
        else
            assert_null(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
