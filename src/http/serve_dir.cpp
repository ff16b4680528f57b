// ServeDir: static files.
//
// Confinement to the root, in three steps, each for a different attack:
//  1. The decoded path is checked as text: a `..` or `.` segment, an empty segment (so no absolute path
//     after "//" or "%2F"), a backslash or a NUL is refused. Decoding comes first, so "%2e%2e", "%2F" and
//     "%5c" are judged as what they decode to.
//  2. The path is resolved (std::filesystem::canonical: every symbolic link followed) and must still lie
//     under the root, resolved the same way: a link inside the root that points outside is not followed.
//     The root is resolved on every request, not once: a root that is itself a link retargeted at each
//     deployment (public -> releases/42) must follow the new target.
//  3. Between that check and the open, someone able to write inside the root could swap a directory for
//     a link; the path of what was actually opened is asked of the kernel (/proc/self/fd) and checked
//     again. Without /proc, step 2 stands alone.
// Every refusal is a 404, the answer for a file that does not exist: a 400 or 403 would tell a prober
// which of its attempts came close.
//
// File I/O happens on the blocking pool (spawn_blocking): a read from a cold disk or a network file
// system can take milliseconds, which on a runtime thread would stall every connection it serves. A
// request costs one trip there when the file is small (open, stat and read in one job), two when it
// carries conditional headers (the read waits until it is known that a body is wanted). A large file is
// read by a producer task a piece at a time, each piece a trip to the pool, through a bounded body
// channel: a slow client holds a few pieces in memory, and a client that leaves stops the reads.

#include "spindle/http/serve_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include "spindle/http/body.hpp"
#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/http/url.hpp"
#include "spindle/runtime/blocking.hpp"
#include "spindle/runtime/spawn.hpp"

namespace spindle::http {

struct ServeDir::Config {
  std::filesystem::path root;
  ServeDirOptions options;
};

namespace {

using namespace std::string_view_literals;

// Statuses status.hpp does not name.
constexpr Status kPartialContent{206};
constexpr Status kPreconditionFailed{412};
constexpr Status kRangeNotSatisfiable{416};

/// Pieces of a streamed file waiting to be written: with 64 KiB pieces a download holds at most 256 KiB
/// while its client is slower than the disk, yet the next piece is usually read before it is needed.
constexpr std::size_t kStreamQueue = 4;

// ---- content types ----

struct ContentType {
  std::string_view extension;
  std::string_view type;
};

// Text types say their charset: without it a browser guesses, and may guess wrong for non-ASCII text.
// JSON has no charset parameter (RFC 8259 makes it UTF-8).
constexpr ContentType kContentTypes[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "text/xml; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
};

/// The Content-Type for a file name, from its extension; unknown types are opaque bytes (with nosniff,
/// the browser will not guess a type that would let it run the file).
std::string_view content_type_for(std::string_view name) noexcept {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  const std::string_view extension = name.substr(dot + 1);
  for (const auto& [known, type] : kContentTypes)
    if (detail::iequals(extension, known)) return type;
  return "application/octet-stream";
}

// ---- paths ----

/// The file path a request names, relative to the root and checked (step 1 above).
struct FilePath {
  std::string relative;  // "" for the root itself
  bool trailing_slash = false;
};

/// The part of the request's path that names the file, still percent-encoded: what a trailing catch-all
/// captured ("/static/{*path}"), else the whole path without its leading '/'. nullopt for a target that
/// is not a path ("*").
std::optional<std::string_view> encoded_file_path(const Request& request) noexcept {
  const std::string_view route = request.matched_route();
  const std::size_t last_segment = route.rfind('/');
  const bool catch_all = !request.params().empty() && last_segment != std::string_view::npos &&
                         route.substr(last_segment + 1).starts_with("{*") && route.ends_with('}');
  if (catch_all) return request.params().back().value;
  const std::string_view path = request.path();
  if (!path.starts_with('/')) return std::nullopt;
  return path.substr(1);
}

/// Checks a decoded relative path; nullopt when it must not be served. A trailing slash is allowed (it
/// asks for a directory); every other segment must be a plain name.
std::optional<FilePath> checked_file_path(std::string_view decoded) {
  if (decoded.find('\0') != std::string_view::npos || decoded.find('\\') != std::string_view::npos) return std::nullopt;
  FilePath path;
  if (decoded.empty()) {
    path.trailing_slash = true;  // the path was "/": the root directory, asked for as a directory
    return path;
  }
  path.trailing_slash = decoded.ends_with('/');
  // Only a trailing slash after a name: "/" alone here came from "//", an empty segment.
  if (path.trailing_slash && decoded.size() > 1) decoded.remove_suffix(1);
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(decoded.find('/', start), decoded.size());
    const std::string_view segment = decoded.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    if (end == decoded.size()) break;
    start = end + 1;
  }
  path.relative = std::string{decoded};
  return path;
}

/// Whether `path` is `root` or under it; both fully resolved.
bool is_within(const std::filesystem::path& path, const std::filesystem::path& root) {
  const std::string_view p = path.native(), r = root.native();
  if (r == "/") return true;
  return p.starts_with(r) && (p.size() == r.size() || p[r.size()] == '/');
}

// ---- files ----

/// An open file, shared by the request and the task streaming it; closed with the last of them.
class FileHandle {
 public:
  explicit FileHandle(int fd) noexcept : fd_(fd) {}
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() { ::close(fd_); }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

/// Reads up to `length` bytes at `offset` (fewer if the file is shorter); nullopt on a read error.
std::optional<std::string> read_at(int fd, std::uint64_t offset, std::size_t length) {
  std::string bytes(length, '\0');
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, bytes.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;  // the file shrank since it was measured
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

enum class Found { nothing, file, directory_without_slash, failed };

/// What the blocking job found.
struct OpenedFile {
  Found found = Found::nothing;
  std::shared_ptr<const FileHandle> file{};
  std::uint64_t size = 0;
  std::int64_t modified_ns = 0;
  std::string_view content_type{};
  std::optional<std::string> contents{};  // the whole file, when it was small enough to read at once
};

/// Opens what `path` names under `root`, confined to it (steps 2 and 3 above). Runs on the blocking pool.
OpenedFile open_file(const std::filesystem::path& root, const FilePath& path, bool index_html, bool read_small,
                     std::size_t small_limit) {
  std::error_code error;
  const std::filesystem::path real_root = std::filesystem::canonical(root, error);
  if (error) return {};
  std::filesystem::path wanted = root / path.relative;
  std::string_view name = path.relative;
  name.remove_prefix(std::min(name.size(), name.rfind('/') + 1));  // npos + 1 is 0
  // At most two rounds: the path, then its directory's index.html.
  for (int round = 0; round < 2; ++round) {
    const std::filesystem::path real = std::filesystem::canonical(wanted, error);
    if (error || !is_within(real, real_root)) return {};
    // O_NONBLOCK: opening a FIFO placed in the root must not wait for a writer.
    const int fd = ::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
      const bool missing = errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == EPERM || errno == ELOOP ||
                           errno == ENXIO || errno == ENAMETOOLONG;
      return OpenedFile{.found = missing ? Found::nothing : Found::failed};
    }
    auto file = std::make_shared<const FileHandle>(fd);
    const std::filesystem::path opened = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), error);
    if (!error && !is_within(opened, real_root)) return {};
    struct stat status {};
    if (::fstat(fd, &status) != 0) return OpenedFile{.found = Found::failed};
    if (S_ISDIR(status.st_mode)) {
      if (!index_html || round == 1) return {};  // no index, or an "index.html" that is a directory
      if (!path.trailing_slash) return OpenedFile{.found = Found::directory_without_slash};
      wanted = real / "index.html";
      name = "index.html";
      continue;
    }
    if (!S_ISREG(status.st_mode)) return {};           // devices, sockets, FIFOs
    if (round == 0 && path.trailing_slash) return {};  // "style.css/" names a directory that is not one
    OpenedFile result{
        .found = Found::file,
        .file = std::move(file),
        .size = static_cast<std::uint64_t>(status.st_size),
        .modified_ns = static_cast<std::int64_t>(status.st_mtim.tv_sec) * 1'000'000'000 + status.st_mtim.tv_nsec,
        .content_type = content_type_for(name)};
    if (read_small && result.size <= small_limit) {
      result.contents = read_at(result.file->fd(), 0, static_cast<std::size_t>(result.size));
      if (!result.contents) return OpenedFile{.found = Found::failed};
      result.size = result.contents->size();  // what is sent is what was read
    }
    return result;
  }
  return {};
}

/// Sends `length` bytes of `file` from `offset` into a streamed body, a piece at a time, each read on the
/// blocking pool. It stops early when the client has gone (send fails) or the file cannot be read.
Task<void> stream_file(std::shared_ptr<const FileHandle> file, std::uint64_t offset, std::uint64_t length,
                       std::size_t chunk_size, BodySender sender) {
  while (length > 0 && !sender.is_closed()) {
    const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(length, chunk_size));
    auto reading = spawn_blocking([file, offset, piece] { return read_at(file->fd(), offset, piece); });
    std::optional<std::string> chunk = co_await std::move(reading);
    // A file that shrank, or a read error: the body ends short. The server frames streams with chunked
    // coding and has no way to abort one, so the client sees a complete but shorter body; a file that
    // changes while it is served is beyond what a static file server can make consistent.
    if (!chunk || chunk->empty()) co_return;
    offset += chunk->size();
    length -= chunk->size();
    const bool sent = co_await sender.send(std::move(*chunk));
    if (!sent) co_return;
  }
}

// ---- dates (RFC 9110 5.6.7) ----

constexpr std::string_view kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kLongDayNames[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};
constexpr std::string_view kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), with its own name tables rather than strftime's,
/// which follow the process's locale.
std::string http_date(std::int64_t seconds) {
  using namespace std::chrono;
  const sys_seconds time{std::chrono::seconds{seconds}};
  const sys_days day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss clock{time - day};
  char text[40];
  const int size = std::snprintf(text, sizeof text, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                                 kDayNames[weekday{day}.c_encoding()].data(), static_cast<unsigned>(date.day()),
                                 kMonthNames[static_cast<unsigned>(date.month()) - 1].data(),
                                 static_cast<int>(date.year()), static_cast<int>(clock.hours().count()),
                                 static_cast<int>(clock.minutes().count()), static_cast<int>(clock.seconds().count()));
  return std::string(text, static_cast<std::size_t>(std::max(size, 0)));
}

std::optional<int> parse_number(std::string_view digits) noexcept {
  if (digits.empty()) return std::nullopt;
  int value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<int> index_of(std::span<const std::string_view> names, std::string_view name) noexcept {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  return std::nullopt;
}

/// "08:49:37" as seconds into the day.
std::optional<int> parse_time_of_day(std::string_view text) noexcept {
  if (text.size() != 8 || text[2] != ':' || text[5] != ':') return std::nullopt;
  const auto hours = parse_number(text.substr(0, 2)), minutes = parse_number(text.substr(3, 2)),
             seconds = parse_number(text.substr(6, 2));
  if (!hours || !minutes || !seconds || *hours > 23 || *minutes > 59 || *seconds > 60) return std::nullopt;
  return *hours * 3600 + *minutes * 60 + *seconds;
}

std::optional<std::int64_t> to_seconds(int year, int month, int day, int time_of_day) noexcept {
  const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return std::nullopt;
  return static_cast<std::int64_t>(std::chrono::sys_days{date}.time_since_epoch().count()) * 86400 + time_of_day;
}

/// An HTTP-date as seconds since the epoch. RFC 9110 5.6.7 has a recipient accept all three formats:
/// IMF-fixdate, and the obsolete RFC 850 and asctime forms that old clients still send.
std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept {
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (text.size() == 29 && text[3] == ',' && text[4] == ' ' && text[7] == ' ' && text[11] == ' ' && text[16] == ' ' &&
      text.substr(25) == " GMT") {
    const auto day = parse_number(text.substr(5, 2)), month = index_of(kMonthNames, text.substr(8, 3)),
               year = parse_number(text.substr(12, 4)), time = parse_time_of_day(text.substr(17, 8));
    if (!index_of(kDayNames, text.substr(0, 3)) || !day || !month || !year || !time) return std::nullopt;
    return to_seconds(*year, *month + 1, *day, *time);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  if (const std::size_t comma = text.find(", "); comma != std::string_view::npos && comma > 3) {
    const std::string_view rest = text.substr(comma + 2);
    if (!index_of(kLongDayNames, text.substr(0, comma)) || rest.size() != 22 || rest[2] != '-' || rest[6] != '-' ||
        rest[9] != ' ' || rest.substr(18) != " GMT")
      return std::nullopt;
    const auto day = parse_number(rest.substr(0, 2)), month = index_of(kMonthNames, rest.substr(3, 3)),
               two_digit_year = parse_number(rest.substr(7, 2)), time = parse_time_of_day(rest.substr(10, 8));
    if (!day || !month || !two_digit_year || !time) return std::nullopt;
    // RFC 9110: a two-digit year more than 50 years in the future is the most recent past one.
    using namespace std::chrono;
    const int this_year = static_cast<int>(year_month_day{floor<days>(system_clock::now())}.year());
    int full_year = this_year / 100 * 100 + *two_digit_year;
    if (full_year > this_year + 50) full_year -= 100;
    return to_seconds(full_year, *month + 1, *day, *time);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (text.size() == 24 && text[3] == ' ' && text[7] == ' ' && text[10] == ' ' && text[19] == ' ') {
    const std::string_view day_text = text[8] == ' ' ? text.substr(9, 1) : text.substr(8, 2);
    const auto day = parse_number(day_text), month = index_of(kMonthNames, text.substr(4, 3)),
               year = parse_number(text.substr(20, 4)), time = parse_time_of_day(text.substr(11, 8));
    if (!index_of(kDayNames, text.substr(0, 3)) || !day || !month || !year || !time) return std::nullopt;
    return to_seconds(*year, *month + 1, *day, *time);
  }
  return std::nullopt;
}

// ---- validators and conditional requests (RFC 9110 8.8, 13) ----

/// The ETag: size and modification time in nanoseconds. Strong, although it is computed from metadata
/// rather than the bytes: If-Range accepts only strong tags (RFC 9110 13.1.5), and a weak one would make
/// every resumed download start over. Two versions of a file with the same size written within the same
/// nanosecond would share it, a risk nginx and others take too.
std::string make_etag(std::uint64_t size, std::int64_t modified_ns) {
  char text[48];
  const int n = std::snprintf(text, sizeof text, "\"%llx-%llx\"", static_cast<unsigned long long>(size),
                              static_cast<unsigned long long>(modified_ns));
  return std::string(text, static_cast<std::size_t>(std::max(n, 0)));
}

/// Whether an If-Match or If-None-Match value names `etag` (ours, strong). Weak comparison (If-None-Match)
/// ignores a W/ on theirs; strong comparison (If-Match) requires theirs to be strong. A malformed list
/// stops matching where it goes wrong: a tag before that may still match.
bool etag_list_matches(std::string_view list, std::string_view etag, bool weak_comparison) noexcept {
  list = detail::trim_ows(list);
  if (list == "*") return true;
  std::size_t at = 0;
  for (;;) {
    while (at < list.size() && (list[at] == ' ' || list[at] == '\t' || list[at] == ',')) ++at;
    if (at == list.size()) return false;
    const bool weak = list.substr(at).starts_with("W/");
    if (weak) at += 2;
    if (at == list.size() || list[at] != '"') return false;
    const std::size_t close = list.find('"', at + 1);
    if (close == std::string_view::npos) return false;
    if (list.substr(at, close + 1 - at) == etag && (weak_comparison || !weak)) return true;
    at = close + 1;
  }
}

/// Whether the request has a field `name`; `matches`: whether any of them (a list may be split over
/// several lines) names `etag`.
struct EtagCondition {
  bool present = false;
  bool matches = false;
};
EtagCondition etag_condition(const Request& request, std::string_view name, std::string_view etag,
                             bool weak_comparison) noexcept {
  EtagCondition condition;
  for (const auto& field : request.headers()) {
    if (!detail::iequals(field.name, name)) continue;
    condition.present = true;
    if (etag_list_matches(field.value, etag, weak_comparison)) condition.matches = true;
  }
  return condition;
}

/// RFC 9110 13.2.2, steps 1 to 4, in that order: 412, 304, or nullopt to go on.
std::optional<Status> evaluate_preconditions(const Request& request, std::string_view etag,
                                             std::int64_t modified) noexcept {
  const EtagCondition if_match = etag_condition(request, "if-match", etag, false);
  if (if_match.present) {
    if (!if_match.matches) return kPreconditionFailed;
  } else if (const auto value = request.header("if-unmodified-since")) {
    const auto date = parse_http_date(detail::trim_ows(*value));  // an invalid date is ignored
    if (date && modified > *date) return kPreconditionFailed;
  }
  const EtagCondition if_none_match = etag_condition(request, "if-none-match", etag, true);
  if (if_none_match.present) {
    // For GET and HEAD (the only methods served) a match is 304, not 412.
    if (if_none_match.matches) return Status::not_modified;
  } else if (const auto value = request.header("if-modified-since")) {
    const auto date = parse_http_date(detail::trim_ows(*value));
    if (date && modified <= *date) return Status::not_modified;
  }
  return std::nullopt;
}

bool has_conditions(const Request& request) noexcept {
  for (const auto& field : request.headers()) {
    if (detail::iequals(field.name, "if-none-match") || detail::iequals(field.name, "if-modified-since") ||
        detail::iequals(field.name, "if-match") || detail::iequals(field.name, "if-unmodified-since"))
      return true;
  }
  return false;
}

// ---- ranges (RFC 9110 14) ----

struct ByteRange {
  enum class Kind { ignored, single, unsatisfiable };
  Kind kind = Kind::ignored;
  std::uint64_t first = 0, last = 0;  // inclusive, as in Content-Range
};

/// Digits as a number; one too large for 64 bits saturates (it is past the end of any file anyway).
std::optional<std::uint64_t> parse_position(std::string_view digits) noexcept {
  if (digits.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
  }
  return value;
}

/// A Range field against a representation of `size` bytes. Only one range is served: several get the
/// whole file with 200, which RFC 9110 14.2 allows ("a server MAY ignore the Range header field"), and
/// spares a multipart/byteranges body that clients rarely ask for. A field that does not parse is ignored
/// the same way (RFC 9110 14.2: a server MUST ignore a Range it does not understand).
ByteRange parse_range(std::string_view value, std::uint64_t size) noexcept {
  value = detail::trim_ows(value);
  const std::size_t equals = value.find('=');
  if (equals == std::string_view::npos || !detail::iequals(value.substr(0, equals), "bytes")) return {};
  std::string_view set = value.substr(equals + 1);
  // Empty list elements are allowed (RFC 9110 5.6.1); more than one real element is several ranges.
  std::string_view spec;
  while (!set.empty()) {
    const std::size_t comma = std::min(set.find(','), set.size());
    const std::string_view element = detail::trim_ows(set.substr(0, comma));
    set.remove_prefix(std::min(comma + 1, set.size()));
    if (element.empty()) continue;
    if (!spec.empty()) return {};  // several ranges: the whole file
    spec = element;
  }
  const std::size_t dash = spec.find('-');
  if (spec.empty() || dash == std::string_view::npos) return {};
  const std::string_view first_text = spec.substr(0, dash), last_text = spec.substr(dash + 1);
  if (first_text.empty()) {  // "-n": the last n bytes
    const auto suffix = parse_position(last_text);
    if (!suffix) return {};
    if (*suffix == 0 || size == 0) return {.kind = ByteRange::Kind::unsatisfiable};
    return {.kind = ByteRange::Kind::single, .first = size - std::min(*suffix, size), .last = size - 1};
  }
  const auto first = parse_position(first_text);
  if (!first) return {};
  std::uint64_t last = UINT64_MAX;
  if (!last_text.empty()) {
    const auto parsed = parse_position(last_text);
    if (!parsed || *parsed < *first) return {};  // "5-2" is invalid, not unsatisfiable
    last = *parsed;
  }
  if (*first >= size) return {.kind = ByteRange::Kind::unsatisfiable};
  return {.kind = ByteRange::Kind::single, .first = *first, .last = std::min(last, size - 1)};
}

/// If-Range (RFC 9110 13.1.5): the range applies only if the client's copy is still current, compared
/// strongly (a weak tag never matches); otherwise the whole file is sent.
bool if_range_holds(const Request& request, std::string_view etag, std::int64_t modified) noexcept {
  const auto field = request.header("if-range");
  if (!field) return true;
  const std::string_view value = detail::trim_ows(*field);
  if (value.starts_with('"')) return value == etag;
  if (value.starts_with("W/")) return false;
  const auto date = parse_http_date(value);
  return date && *date == modified;
}

// ---- responses ----

Response not_found() { return Response::error(Status::not_found, "not found"); }

Response method_not_allowed() {
  Response response = Response::error(Status::method_not_allowed, "method not allowed");
  response.headers.set_static("allow", "GET, HEAD");
  return response;
}

/// "/docs" is a directory: send the client to "/docs/", keeping the query, so that the index page's
/// relative links resolve inside the directory.
Response redirect_to_directory(const Request& request) {
  const std::string_view path = request.path();
  // A Location starting with "//" (or "/\", which browsers read alike) would name another host. The
  // path checks refuse such paths before this point; this keeps an open redirect impossible regardless.
  if (path.starts_with("//") || path.starts_with("/\\")) return not_found();
  std::string location{path};
  location += '/';
  if (!request.query().empty()) location.append("?").append(request.query());
  Response response = Response::empty(Status::permanent_redirect);
  response.headers.set("location", location);
  return response;
}

/// The fields a 304 repeats from the 200 it stands for (RFC 9110 15.4.5), which every answer with the
/// file also carries.
void set_validators(HeaderMap& headers, const std::string& etag, const std::string& last_modified,
                    const ServeDirOptions& options) {
  headers.set("etag", etag);
  headers.set("last-modified", last_modified);
  if (!options.cache_control.empty()) headers.set("cache-control", options.cache_control);
}

}  // namespace

ServeDir::ServeDir(std::filesystem::path root, ServeDirOptions options) {
  if (options.chunk_size == 0) throw std::invalid_argument("ServeDir: chunk_size must not be 0");
  // Checked now rather than on the first request, where it would throw from every response.
  if (!detail::is_field_value(options.cache_control))
    throw std::invalid_argument("ServeDir: cache_control must not contain control characters");
  config_ = std::make_shared<const Config>(Config{std::filesystem::absolute(std::move(root)), std::move(options)});
}

Task<Response> ServeDir::operator()(Request request) const { return serve(config_, std::move(request)); }

Task<Response> ServeDir::serve(std::shared_ptr<const Config> config, Request request) {
  const Method method = request.method();
  if (method != Method::get && method != Method::head) co_return method_not_allowed();
  const std::optional<std::string_view> encoded = encoded_file_path(request);
  if (!encoded) co_return not_found();
  Result<std::string, UrlError> decoded = percent_decode(*encoded);
  if (!decoded) co_return Response::error(Status::bad_request, decoded.error().reason);
  std::optional<FilePath> path = checked_file_path(*decoded);
  if (!path) co_return not_found();

  // A conditional request may end in a 304: read only once it is known that a body is wanted. A HEAD
  // reads too: the server takes the Content-Length from the body it then drops.
  const bool read_small = !has_conditions(request);
  auto opening = spawn_blocking([config, path = std::move(*path), read_small] {
    return open_file(config->root, path, config->options.index_html, read_small, config->options.chunk_size);
  });
  OpenedFile opened = co_await std::move(opening);
  switch (opened.found) {
    case Found::nothing:
      co_return not_found();
    case Found::failed:
      co_return Response::error(Status::internal_server_error, "the file could not be read");
    case Found::directory_without_slash:
      co_return redirect_to_directory(request);
    case Found::file:
      break;
  }

  const std::string etag = make_etag(opened.size, opened.modified_ns);
  const std::int64_t modified = opened.modified_ns / 1'000'000'000 - (opened.modified_ns % 1'000'000'000 < 0);
  const std::string last_modified = http_date(modified);
  if (const std::optional<Status> answered = evaluate_preconditions(request, etag, modified)) {
    Response response = *answered == Status::not_modified ? Response::empty(Status::not_modified)
                                                          : Response::error(*answered, "precondition failed");
    set_validators(response.headers, etag, last_modified, config->options);
    co_return response;
  }

  std::uint64_t offset = 0, length = opened.size;
  bool partial = false;
  // Range is defined for GET only (RFC 9110 14.2); a HEAD describes the whole file.
  const std::optional<std::string_view> range_field = request.header("range");
  if (method == Method::get && range_field && if_range_holds(request, etag, modified)) {
    const ByteRange range = parse_range(*range_field, opened.size);
    if (range.kind == ByteRange::Kind::unsatisfiable) {
      Response response = Response::error(kRangeNotSatisfiable, "range not satisfiable");
      response.headers.set("content-range", "bytes */" + std::to_string(opened.size));
      response.headers.set_static("accept-ranges", "bytes");
      co_return response;
    }
    if (range.kind == ByteRange::Kind::single) {
      offset = range.first;
      length = range.last - range.first + 1;
      partial = true;
    }
  }

  Response response{partial ? kPartialContent : Status::ok, {}, {}};
  response.headers.set("content-type", opened.content_type);
  // Browsers must not second-guess the type: a text file that looks like HTML must not run as a page.
  response.headers.set_static("x-content-type-options", "nosniff");
  set_validators(response.headers, etag, last_modified, config->options);
  response.headers.set_static("accept-ranges", "bytes");
  if (partial)
    response.headers.set("content-range", "bytes " + std::to_string(offset) + "-" +
                                              std::to_string(offset + length - 1) + "/" + std::to_string(opened.size));

  const std::size_t chunk_size = config->options.chunk_size;
  if (opened.contents) {
    response.body =
        partial ? Body{opened.contents->substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(length))}
                : Body{std::move(*opened.contents)};
  } else if (length <= chunk_size) {
    auto reading = spawn_blocking(
        [file = opened.file, offset, length] { return read_at(file->fd(), offset, static_cast<std::size_t>(length)); });
    std::optional<std::string> bytes = co_await std::move(reading);
    // Content-Range (or the validators) already describe `length` bytes; fewer would contradict them.
    if (!bytes || bytes->size() != length)
      co_return Response::error(Status::internal_server_error, "the file could not be read");
    response.body = Body{std::move(*bytes)};
  } else if (method == Method::head) {
    // The server sends no body after HEAD: a stream that ends at once gives the same head as a GET's
    // without reading the file.
    std::pair<BodySender, Body> channel = Body::channel(1);
    response.body = std::move(channel.second);
  } else {
    // The server frames every stream with chunked coding (HTTP/1.1) and drops a handler's own
    // Content-Length, so a streamed file goes without one: clients see the size in Content-Range only.
    std::pair<BodySender, Body> channel = Body::channel(kStreamQueue);
    spawn(stream_file(std::move(opened.file), offset, length, chunk_size, std::move(channel.first))).detach();
    response.body = std::move(channel.second);
  }
  co_return response;
}

}  // namespace spindle::http
