/* SPDX-License-Identifier: MIT */
/*
 * The libFuzzer entry point every target in tests/fuzz/ defines. A target must not leak,
 * must not keep state between calls, and must treat any input as possible.
 */
#ifndef PTC_TESTS_FUZZ_FUZZ_H
#define PTC_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
