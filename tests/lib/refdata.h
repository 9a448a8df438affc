/* Reading the shared reference data in tests: whole files and JSON numbers.
 * Both fail the running cmocka test (fail_msg) instead of returning errors. */
#ifndef FA_TESTS_REFDATA_H
#define FA_TESTS_REFDATA_H

#include <stddef.h>

#include <jansson.h>

/* The whole file, NUL-terminated (free() it); *len its size. */
void *tu_read_file(const char *path, size_t *len);
/* The number o[k]; fails the test when it is missing or not a number. */
double tu_json_num(const json_t *o, const char *k);

#endif
