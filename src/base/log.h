/* Logging to stderr: one line per event, "2026-12-01T12:00:00.123Z level msg".
 * Never log secrets (keys, tokens, passwords, face data). */
#ifndef FA_BASE_LOG_H
#define FA_BASE_LOG_H

enum fa_log_level { FA_LOG_DEBUG, FA_LOG_INFO, FA_LOG_WARN, FA_LOG_ERROR, FA_LOG_OFF };

/* Set the lowest level written (default FA_LOG_INFO). Runs on: any thread. */
void fa_log_set_level(enum fa_log_level lvl);
enum fa_log_level fa_log_get_level(void);
/* Parse "debug|info|warn|error|off"; returns -1 when unknown. */
int fa_log_parse_level(const char *s);
/* Write one line (a newline is added). Runs on: any thread. */
void fa_log(enum fa_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fa_debug(...) fa_log(FA_LOG_DEBUG, __VA_ARGS__)
#define fa_info(...) fa_log(FA_LOG_INFO, __VA_ARGS__)
#define fa_warn(...) fa_log(FA_LOG_WARN, __VA_ARGS__)
#define fa_error(...) fa_log(FA_LOG_ERROR, __VA_ARGS__)

#endif
