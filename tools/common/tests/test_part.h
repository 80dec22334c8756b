/* ES_TEST_PART=K/N: a long end-to-end test binary registered N times with
 * ctest, each process running its part of the tests (those whose index
 * % N == K - 1), so that ctest's parallel jobs share its time instead of
 * waiting on one long process. Without the variable every test runs.
 * ES_TEST_ONLY=PATTERN and ES_TEST_SKIP=PATTERN (cmocka's patterns, * and
 * ?) narrow it further: CI runs a test too slow under ASan in a process of
 * its own, outside that step. Include after <cmocka.h>. */
#ifndef ES_TEST_PART_H
#define ES_TEST_PART_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Keeps this process's part of tests[0..n) at the front; returns how many. */
static inline size_t test_part(struct CMUnitTest *tests, size_t n)
{
    const char *only = getenv("ES_TEST_ONLY"), *skip = getenv("ES_TEST_SKIP");
    if (only != NULL && only[0] != '\0')
        cmocka_set_test_filter(only);
    if (skip != NULL && skip[0] != '\0')
        cmocka_set_skip_filter(skip);
    const char *p = getenv("ES_TEST_PART");
    unsigned k = 0, parts = 0;
    if (p == NULL || sscanf(p, "%u/%u", &k, &parts) != 2 || parts == 0 || k == 0 || k > parts)
        return n;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (i % parts == k - 1)
            tests[kept++] = tests[i];
    return kept;
}

#endif
