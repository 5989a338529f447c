/*
 * test.h - the unit tests' tiny harness.  CHECK records a failure and goes
 * on; each test binary ends with test_summary(), which prints
 * "<name>: N passed, M failed" and returns the exit status.
 */
#ifndef WSY_TEST_H
#define WSY_TEST_H

#include <stdio.h>
#include <string.h>

static int test_pass, test_fail;

#define CHECK(cond) do { \
	if (cond) test_pass++; \
	else { test_fail++; fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
	    __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ == b_) test_pass++; \
	else { test_fail++; fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", \
	    __FILE__, __LINE__, #a, a_, b_); } \
} while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

static inline int test_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, test_pass, test_fail);
	return test_fail ? 1 : 0;
}

#endif
