/* Graph-model loading for the Human networks: one place for the path, the
 * input size and the output checks. */
#include "face/gmodel.h"

#include <stdio.h>

enum fa_status gmodel_load(const char *dir, const char *file, const struct nn_backend *be,
                           int32_t side, const struct gmodel_output *want, int n, int *idx,
                           struct nn_graph **out, struct fa_errinfo *info)
{
    const int32_t hwc[3] = {side, side, 3};
    struct nn_graph *g = NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
        fa_errinfo_set(info, "%s: model directory path too long", file);
        return FA_ERR_ARG;
    }
    enum fa_status rc = nn_graph_load(path, be, hwc, &g, info);
    if (rc == FA_ERR_ARG) /* the model's input is not the size this net needs */
        rc = FA_ERR_MODEL_TENSOR;
    if (rc != FA_OK)
        return rc;
    if (nn_graph_output_count(g) > GMODEL_MAX_OUTPUTS) {
        fa_errinfo_set(info, "%s: more than %d outputs", file, GMODEL_MAX_OUTPUTS);
        rc = FA_ERR_MODEL_TENSOR;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        idx[i] = nn_graph_output_find(g, want[i].name);
        if (idx[i] < 0 || nn_graph_output_len(g, (size_t)idx[i]) != want[i].len) {
            fa_errinfo_set(info, "%s: output %s missing or not %zu floats", file, want[i].name,
                           want[i].len);
            rc = FA_ERR_MODEL_TENSOR;
            goto out;
        }
    }
    *out = g;
    g = NULL;
out:
    nn_graph_free(g);
    return rc;
}
