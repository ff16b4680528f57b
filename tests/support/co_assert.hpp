#pragma once
// gtest's ASSERT_* macros `return`, which a coroutine cannot: CO_ASSERT ends a Task<void> test body instead.
#include <gtest/gtest.h>

#define CO_ASSERT(condition)                          \
  if (!(condition)) {                                 \
    ADD_FAILURE() << "assertion failed: " #condition; \
    co_return;                                        \
  }
