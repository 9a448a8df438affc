/* Names, messages and classes of enum fa_status, from the one table. */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *fa_status_name(enum fa_status s)
{
    switch (s) {
#define FA_STATUS_NAME(name, value, cls, msg)                                                      \
    case name:                                                                                     \
        return #name;
        FA_STATUS_TABLE(FA_STATUS_NAME)
#undef FA_STATUS_NAME
    }
    return "FA_UNKNOWN";
}

const char *fa_status_str(enum fa_status s)
{
    switch (s) {
#define FA_STATUS_MSG(name, value, cls, msg)                                                       \
    case name:                                                                                     \
        return msg;
        FA_STATUS_TABLE(FA_STATUS_MSG)
#undef FA_STATUS_MSG
    }
    return "unknown error";
}

enum fa_class fa_status_class(enum fa_status s)
{
    switch (s) {
#define FA_STATUS_CLS(name, value, cls, msg)                                                       \
    case name:                                                                                     \
        return cls;
        FA_STATUS_TABLE(FA_STATUS_CLS)
#undef FA_STATUS_CLS
    }
    return FA_CLASS_INTERNAL;
}

void fa_errinfo_set(struct fa_errinfo *info, const char *fmt, ...)
{
    if (info == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->what, sizeof info->what, fmt, ap);
    va_end(ap);
}
