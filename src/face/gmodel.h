/* Private to face/: loading a TF.js graph model of the Human package for a
 * fixed square RGB input and finding its outputs by node name, shared by
 * BlazeFace, FaceMesh and Iris. */
#ifndef FA_FACE_GMODEL_H
#define FA_FACE_GMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "nn/nn.h"

/* Most outputs a model may have: callers run it into float *outs[this]. */
#define GMODEL_MAX_OUTPUTS 8

/* One output the caller needs: its node name and its size in floats. */
struct gmodel_output {
    const char *name;
    size_t len;
};

/* Load dir/file planned for a [side, side, 3] input and look up the `n`
 * outputs in `want`; idx[i] is then the graph output index of want[i].
 * On FA_OK *out owns the graph (nn_graph_free). Errors as nn_graph_load,
 * except that a model whose input cannot be that size, a missing or
 * mis-sized output, or more than GMODEL_MAX_OUTPUTS outputs give
 * FA_ERR_MODEL_TENSOR, with `info` naming the model and the output.
 * Runs on: any thread (load time). */
enum fa_status gmodel_load(const char *dir, const char *file, const struct nn_backend *be,
                           int32_t side, const struct gmodel_output *want, int n, int *idx,
                           struct nn_graph **out, struct fa_errinfo *info);

#endif
