/* Bit-exactness of the decoders: every image listed in the reference JSONs
 * (faceapi.json, facemesh.photos.cpu.json; keys are paths under
 * shared/data/faces) is decoded by img_load_file and the SHA-256 of its RGB
 * bytes compared with "rgb_sha256", which the reference tool computed on
 * libjpeg-turbo's output. FA_TEST_QUICK=1 checks every 4th image. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"
#include "sha256.h"
#include "testutil.h"

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    tu_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    tu_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    tu_sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void check_reference(const char *json_rel, size_t min_images)
{
    char path[1024];
    json_error_t err;
    json_t *root = json_load_file(tu_shared_path(path, sizeof path, json_rel), 0, &err);
    if (root == NULL)
        fail_msg("%s: %s", path, err.text);
    const char *quick = getenv("FA_TEST_QUICK");
    int step = quick != NULL && strcmp(quick, "1") == 0 ? 4 : 1;
    const char *key;
    json_t *v;
    size_t seen = 0, checked = 0;
    json_object_foreach(root, key, v)
    {
        const char *want = json_string_value(json_object_get(v, "rgb_sha256"));
        if (want == NULL)
            continue;
        if (seen++ % (size_t)step != 0)
            continue;
        char rel[512];
        snprintf(rel, sizeof rel, "data/faces/%s", key);
        struct img *im = NULL;
        enum fa_status rc = img_load_file(tu_shared_path(path, sizeof path, rel), NULL, &im);
        if (rc != FA_OK)
            fail_msg("%s: %s", key, fa_status_name(rc));
        assert_int_equal(im->w, json_integer_value(json_object_get(v, "width")));
        assert_int_equal(im->h, json_integer_value(json_object_get(v, "height")));
        char hex[65];
        tu_sha256_hex(im->rgb, (size_t)im->w * (size_t)im->h * 3, hex);
        if (strcmp(hex, want) != 0)
            fail_msg("%s: rgb sha256 %s, reference %s", key, hex, want);
        img_free(im);
        checked++;
    }
    print_message("%s: %zu images bit-identical (of %zu listed)\n", json_rel, checked, seen);
    assert_true(seen >= min_images);
    json_decref(root);
}

static void test_faceapi_images(void **state)
{
    (void)state;
    check_reference("data/reference/faceapi.json", 100);
}

static void test_facemesh_images(void **state)
{
    (void)state;
    check_reference("data/reference/facemesh.photos.cpu.json", 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_faceapi_images),
        cmocka_unit_test(test_facemesh_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
