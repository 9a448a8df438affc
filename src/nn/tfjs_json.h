/* Private to nn/: the TF.js weights loader on an already parsed jansson
 * tree, so that the graph-model runtime (nn/graph.c) parses model.json once
 * and hands its "weightsManifest" array over. */
#ifndef FA_NN_TFJS_JSON_H
#define FA_NN_TFJS_JSON_H

#include <jansson.h>

#include "nn/nn.h"

/* As nn_weights_load, with `manifest` the weights-manifest array (borrowed)
 * and the shards read from folder `dir`. Runs on: any thread (load time). */
enum fa_status nn_weights_load_json(const json_t *manifest, const char *dir, struct nn_weights *out,
                                    struct fa_errinfo *info);
/* As nn_weights_parse, with the manifest array (borrowed) and the
 * concatenated shards in memory. */
enum fa_status nn_weights_from_json(const json_t *manifest, const uint8_t *bin, size_t bin_len,
                                    struct nn_weights *out, struct fa_errinfo *info);

#endif
