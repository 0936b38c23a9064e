/* argv of a container's process (Docker's rules). See process.h. */
#include "server/process.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

static void append(char **v, size_t *n, char *const *src, size_t count)
{
    for (size_t i = 0; i < count; i++)
        v[(*n)++] = xstrdup(src[i]);
    v[*n] = NULL;
}

int process_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                 char *const *image_entrypoint, char *const *image_cmd, char ***ret_argv,
                 cri_error_t *err)
{
    size_t n_ep = strv_len(image_entrypoint), n_cmd = strv_len(image_cmd);
    /* Entrypoint [""] means "no entrypoint" (docker run --entrypoint "") */
    if (n_ep == 1 && image_entrypoint[0][0] == '\0')
        n_ep = 0;
    char **argv = xcalloc(n_command + n_args + n_ep + n_cmd + 1, sizeof(char *));
    size_t n = 0;
    if (n_command > 0) {
        append(argv, &n, command, n_command);
        append(argv, &n, args, n_args);
    } else {
        append(argv, &n, image_entrypoint, n_ep);
        if (n_args > 0)
            append(argv, &n, args, n_args);
        else
            append(argv, &n, image_cmd, n_cmd);
    }
    if (n == 0 || argv[0][0] == '\0') {
        strv_free(argv);
        return cri_error_set(err, EINVAL,
                             "no command specified: config.command, config.args and the image's "
                             "Entrypoint and Cmd are all empty");
    }
    *ret_argv = argv;
    return 0;
}
