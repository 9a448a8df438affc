/* stderr logger; a line is formatted whole, then written with one call so
 * lines from different threads do not interleave. */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"

static atomic_int level = FA_LOG_INFO;

void fa_log_set_level(enum fa_log_level lvl)
{
    atomic_store(&level, (int)lvl);
}

enum fa_log_level fa_log_get_level(void)
{
    return (enum fa_log_level)atomic_load(&level);
}

int fa_log_parse_level(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void fa_log(enum fa_log_level lvl, const char *fmt, ...)
{
    static const char *const tags[] = {"debug", "info", "warn", "error"};
    if ((int)lvl < atomic_load(&level) || lvl >= FA_LOG_OFF)
        return;
    char line[2048];
    char ts[32];
    fa_iso8601_ms(fa_wall_ms(), ts);
    int n = snprintf(line, sizeof line, "%s %s ", ts, tags[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
