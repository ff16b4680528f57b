#include "spindle/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

using spindle::Err;
using spindle::Result;

namespace {

Result<int, std::string> parse_digit(char c) {
  if (c < '0' || c > '9') return Err{std::string("not a digit")};
  return c - '0';
}

TEST(Result, HoldsValueOrError) {
  auto ok = parse_digit('7');
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 7);
  EXPECT_EQ(ok.value_or(0), 7);

  auto bad = parse_digit('x');
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "not a digit");
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(Result, SameTypeForValueAndErrorStaysUnambiguous) {
  Result<int, int> value = 3;
  Result<int, int> error = Err{4};
  EXPECT_TRUE(value.has_value());
  EXPECT_EQ(value.value(), 3);
  EXPECT_FALSE(error.has_value());
  EXPECT_EQ(error.error(), 4);
}

TEST(Result, AccessingTheWrongAlternativeThrows) {
  Result<int, std::string> bad = Err{std::string("e")};
  EXPECT_THROW((void)bad.value(), spindle::BadResultAccess);
  Result<int, std::string> good = 1;
  EXPECT_THROW((void)good.error(), std::logic_error);
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>, int> r = std::make_unique<int>(5);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
}

TEST(Result, VoidSpecialisation) {
  Result<void, std::string> ok;
  Result<void, std::string> failed = Err{std::string("boom")};
  EXPECT_TRUE(ok);
  EXPECT_NO_THROW(ok.value());
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.error(), "boom");
  EXPECT_THROW(failed.value(), spindle::BadResultAccess);
}

TEST(Result, IoResultCarriesErrno) {
  errno = ECONNREFUSED;
  spindle::IoResult<int> r = spindle::last_os_error();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::connection_refused);
}

}  // namespace
