/* Keeps fa_testlib non-empty before any helper exists. */
typedef int fa_testlib_empty;
