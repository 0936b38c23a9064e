/* Private interfaces of the image handlers (server/image/ .c files): conversions
 * from the store's types to CRI messages. */
#ifndef CRICKET_SERVER_IMAGE_INTERNAL_H
#define CRICKET_SERVER_IMAGE_INTERNAL_H

#include "server/image/image.h"

/* ---- convert.c: image_t -> CRI messages (server/image RPC files only) ---- */

struct rpc_ctx;
struct Runtime__V1__Image;
/* An arena-allocated CRI Image for img. */
struct Runtime__V1__Image *image_to_cri(struct rpc_ctx *ctx, const image_t *img);
/* The verbose info JSON of ImageStatus (arena string). */
char *image_verbose_info(struct rpc_ctx *ctx, const image_t *img);

#endif
