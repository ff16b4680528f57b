// spindle::json: described structs to JSON and back, and the errors that name what is wrong.

#include "spindle/json.hpp"

#include <gtest/gtest.h>

#include <boost/describe.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace spindle;

namespace {

enum class Role { admin, member };
BOOST_DESCRIBE_ENUM(Role, admin, member)

struct Address {
  std::string city;
  std::optional<std::string> zip;
};
BOOST_DESCRIBE_STRUCT(Address, (), (city, zip))

struct User {
  std::int64_t id = 0;
  std::string name;
  Role role = Role::member;
  std::vector<Address> addresses;
  std::optional<double> score;
  bool active = false;
  std::map<std::string, std::uint8_t> levels;
};
BOOST_DESCRIBE_STRUCT(User, (), (id, name, role, addresses, score, active, levels))

User sample() {
  return User{7,          "Ada \"the first\"\n", Role::admin, {{"London", "N1"}, {"Paris", std::nullopt}}, 2.5, true,
              {{"go", 3}}};
}

}  // namespace

TEST(Json, WritesADescribedStruct) {
  EXPECT_EQ(json::to_string(sample()),
            R"({"id":7,"name":"Ada \"the first\"\n","role":"admin","addresses":[{"city":"London","zip":"N1"},)"
            R"({"city":"Paris","zip":null}],"score":2.5,"active":true,"levels":{"go":3}})");
}

TEST(Json, ReadsBackWhatItWrote) {
  const User original = sample();
  Result<User, json::Error> back = json::from_string<User>(json::to_string(original));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->id, 7);
  EXPECT_EQ(back->name, original.name);
  EXPECT_EQ(back->role, Role::admin);
  ASSERT_EQ(back->addresses.size(), 2u);
  EXPECT_EQ(back->addresses[0].zip, "N1");
  EXPECT_EQ(back->addresses[1].zip, std::nullopt);
  EXPECT_EQ(back->score, 2.5);
  EXPECT_EQ(back->levels.at("go"), 3);
}

TEST(Json, IgnoresUnknownMembersAndTreatsMissingOptionalsAsNull) {
  auto read = json::from_string<Address>(R"({"city":"Oslo","population":700000,"extra":{"a":[1,2]}})");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->city, "Oslo");
  EXPECT_EQ(read->zip, std::nullopt);
}

TEST(Json, NamesTheMemberAtFault) {
  struct Case {
    const char* text;
    const char* message;
    const char* path;
  };
  const Case cases[] = {
      {R"({"name":"a","role":"admin","addresses":[],"active":true,"levels":{}})", "is missing", "id"},
      {R"({"id":"7"})", "must be an integer", "id"},
      {R"({"id":1.5})", "must be an integer", "id"},
      {R"({"id":99999999999999999999})", "must be an integer", "id"},
      {R"({"id":1,"name":"a","role":"root"})", "must be one of admin, member", "role"},
      {R"({"id":1,"name":"a","role":"admin","addresses":[{"city":"x"},{"zip":"1"}]})", "is missing",
       "addresses[1].city"},
      {R"({"id":1,"name":"a","role":"admin","addresses":[],"active":true,"levels":{"go":300}})", "is out of range",
       "levels.go"},
      {R"({"id":1,"name":"a","role":"admin","addresses":{}})", "must be an array", "addresses"},
      {R"([1,2])", "must be an object", ""},
  };
  for (const Case& c : cases) {
    auto read = json::from_string<User>(c.text);
    ASSERT_FALSE(read) << c.text;
    EXPECT_EQ(read.error().kind, json::Error::Kind::data) << c.text;
    EXPECT_EQ(read.error().message, c.message) << c.text;
    EXPECT_EQ(read.error().path, c.path) << c.text;
  }
}

TEST(Json, SyntaxErrorsSayWhere) {
  for (const char* text : {"", "{", R"({"id":})", R"({"id":1} x)", "{\"name\":\"\xff\"}", "[1,]"}) {
    auto read = json::from_string<User>(text);
    ASSERT_FALSE(read) << text;
    EXPECT_EQ(read.error().kind, json::Error::Kind::syntax) << text;
    EXPECT_NE(read.error().message.find("invalid JSON at byte"), std::string::npos) << read.error().message;
  }
}

TEST(Json, DeepNestingIsAnErrorNotAStackOverflow) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  auto read = json::from_string<boost::json::value>(deep);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().kind, json::Error::Kind::syntax);
  EXPECT_NE(read.error().message.find("nested deeper than 64"), std::string::npos) << read.error().message;
  const std::string allowed = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(json::from_string<boost::json::value>(allowed));
}

TEST(Json, StringsAreEscapedAndInvalidUtf8Replaced) {
  std::string out;
  json::write_string(out, std::string{"a\x01\t\"\\\xc3\xa9\xff\xe2\x82", 10});
  EXPECT_EQ(out, R"("a\u0001\t\"\\é\ufffd\ufffd\ufffd")");
  EXPECT_EQ(json::to_string(std::vector<double>{1.0 / 0.0, 0.1}), "[null,0.1]");
}

TEST(Json, DocumentsAreWrittenAsValidJson) {
  // 1e999 reads as infinity; Boost's own serializer would write `Infinity`, which no parser accepts.
  auto document = json::from_string<boost::json::value>(R"({"big":1e999,"list":[1,-2,18446744073709551615,"\u00e9"]})");
  ASSERT_TRUE(document);
  const std::string written = json::to_string(*document);
  EXPECT_EQ(written, R"({"big":null,"list":[1,-2,18446744073709551615,"é"]})");
  EXPECT_TRUE(json::from_string<boost::json::value>(written));
}
