#include "spindle/http/detail/path_tree.hpp"

#include <algorithm>
#include <utility>

namespace spindle::http::detail {
namespace {

enum class PieceKind : std::uint8_t { static_text, param, catch_all };

// A pattern cut at its parameters: static runs (braces unescaped) and parameters (name only, views into
// the pattern).
struct Piece {
  PieceKind kind;
  std::string text;
  std::string_view name;
};

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Built piece by piece: GCC 12 warns falsely (-Wrestrict) about "`" + std::string(text).
std::string quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '`';
  out += text;
  out += '`';
  return out;
}

Err<std::string> malformed(std::string_view pattern, std::string_view why) {
  return Err{"invalid route " + quoted(pattern) + ": " + std::string(why)};
}

Result<std::vector<Piece>, std::string> parse_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') return malformed(pattern, "a route must start with '/'");
  std::vector<Piece> pieces;
  std::string literal;  // static text since the last parameter
  std::vector<std::string_view> names;
  std::size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    const bool doubled = i + 1 < pattern.size() && pattern[i + 1] == c;
    if (c == '}') {
      if (!doubled) return malformed(pattern, "unescaped '}' (write `}}` for a literal brace)");
      literal += '}';
      i += 2;
      continue;
    }
    if (c != '{') {
      literal += c;
      ++i;
      continue;
    }
    if (doubled) {
      literal += '{';
      i += 2;
      continue;
    }

    const std::size_t close = pattern.find('}', i + 1);
    if (close == std::string_view::npos) return malformed(pattern, "unclosed '{' (write `{{` for a literal brace)");
    const std::string_view written = pattern.substr(i, close + 1 - i);
    const bool catch_all = pattern[i + 1] == '*';
    const std::string_view name = pattern.substr(i + 1 + catch_all, close - i - 1 - catch_all);
    if (name.empty()) return malformed(pattern, "parameter " + quoted(written) + " has no name");
    if (!std::all_of(name.begin(), name.end(), is_name_char)) {
      return malformed(pattern, "parameter name " + quoted(name) + " may contain only letters, digits and '_'");
    }
    const std::size_t after = close + 1;
    const bool starts_segment = literal.ends_with('/');
    const bool ends_segment = after == pattern.size() || pattern[after] == '/';
    if (!starts_segment || (!catch_all && !ends_segment)) {
      return malformed(pattern, "parameter " + quoted(written) +
                                    " must fill a whole segment, from a '/' to the next '/' or the end (write `{{` and "
                                    "`}}` for literal braces)");
    }
    if (catch_all && after != pattern.size()) {
      return malformed(pattern, "catch-all parameter " + quoted(written) + " must be the last segment of the route");
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return malformed(pattern, "parameter name " + quoted(name) + " is used twice");
    }
    names.push_back(name);
    if (!literal.empty()) pieces.push_back({PieceKind::static_text, std::move(literal), {}});
    literal.clear();
    pieces.push_back({catch_all ? PieceKind::catch_all : PieceKind::param, {}, name});
    i = after;
  }
  if (!literal.empty()) pieces.push_back({PieceKind::static_text, std::move(literal), {}});
  return pieces;
}

// `pattern` with parameter names left out ("/users/{}/files/{*}"): two routes with the same shape match
// the same paths. Escapes are kept as written, so "{}" can only come from a parameter.
std::string shape_of(std::string_view pattern) {
  std::string shape;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    shape += pattern[i];
    const bool escaped_brace = i + 1 < pattern.size() && pattern[i + 1] == pattern[i];
    if ((pattern[i] == '{' || pattern[i] == '}') && escaped_brace) {
      shape += pattern[++i];
    } else if (pattern[i] == '{') {
      if (pattern[i + 1] == '*') shape += '*';
      i = pattern.find('}', i);
      shape += '}';
    }
  }
  return shape;
}

std::size_t common_prefix_length(std::string_view a, std::string_view b) noexcept {
  std::size_t length = 0;
  while (length < a.size() && length < b.size() && a[length] == b[length]) ++length;
  return length;
}

std::string written_param(PieceKind kind, std::string_view name) {
  std::string written = kind == PieceKind::catch_all ? "{*" : "{";
  written += name;
  written += '}';
  return written;
}

}  // namespace

Result<void, std::string> PathTree::insert(std::string_view pattern, std::uint32_t value) {
  auto parsed = parse_pattern(pattern);
  if (!parsed) return Err{std::move(parsed).error()};
  if (nodes_.empty()) add_node(Node{});
  const auto pattern_index = static_cast<std::uint32_t>(patterns_.size());

  // A refused pattern leaves the tree untouched: a conflict lies on the part of the tree this pattern
  // shares with earlier ones, and the tree is only changed (a node split or added) where the pattern
  // leaves that part, after which nothing can conflict.
  std::uint32_t at = 0;
  for (const Piece& piece : *parsed) {
    if (piece.kind == PieceKind::static_text) {
      at = insert_static_text(at, piece.text);
      continue;
    }
    const bool is_param = piece.kind == PieceKind::param;
    const std::uint32_t existing = is_param ? nodes_[at].param_child : nodes_[at].catch_all_child;
    if (existing != kNone) {
      const Node& other = nodes_[existing];
      if (other.name == piece.name) {
        at = existing;
        continue;
      }
      const std::string shape = shape_of(pattern);
      for (const std::string& earlier : patterns_) {
        if (shape_of(earlier) == shape) {
          return Err{"route " + quoted(pattern) + " conflicts with " + quoted(earlier) +
                     ": they differ only in parameter names, so they match the same paths"};
        }
      }
      return Err{"route " + quoted(pattern) + " conflicts with " + quoted(patterns_[other.creator_pattern]) +
                 ": a parameter in the same place must have the same name in every route (" +
                 quoted(written_param(piece.kind, piece.name)) + " here, " +
                 quoted(written_param(piece.kind, other.name)) + " there)"};
    }
    Node wildcard;
    wildcard.name = names_.emplace_back(piece.name);
    wildcard.creator_pattern = pattern_index;
    const std::uint32_t child = add_node(std::move(wildcard));
    (is_param ? nodes_[at].param_child : nodes_[at].catch_all_child) = child;
    at = child;
  }
  if (nodes_[at].route_pattern != kNone) {
    return Err{"route " + quoted(pattern) + " conflicts with " + quoted(patterns_[nodes_[at].route_pattern]) +
               ": the same route is added twice"};
  }
  nodes_[at].route_pattern = pattern_index;
  nodes_[at].value = value;
  patterns_.emplace_back(pattern);
  return {};
}

std::uint32_t PathTree::add_node(Node node) {
  nodes_.push_back(std::move(node));
  return static_cast<std::uint32_t>(nodes_.size() - 1);
}

// Returns the node where `text`, read from the end of `parent`, ends; splits or adds nodes as needed.
std::uint32_t PathTree::insert_static_text(std::uint32_t parent, std::string_view text) {
  while (!text.empty()) {
    const std::uint32_t child = find_static_child(nodes_[parent], text.front());
    if (child == kNone) {
      Node leaf;
      leaf.text = std::string(text);
      const std::uint32_t leaf_index = add_node(std::move(leaf));
      nodes_[parent].child_first_bytes += text.front();
      nodes_[parent].static_children.push_back(leaf_index);
      return leaf_index;
    }
    const std::size_t common = common_prefix_length(nodes_[child].text, text);
    if (common < nodes_[child].text.size()) {
      // The split keeps the upper half at the child's index, so the parent's entry stays right.
      Node lower = std::move(nodes_[child]);
      Node upper;
      upper.text = lower.text.substr(0, common);
      lower.text.erase(0, common);
      upper.child_first_bytes = lower.text.substr(0, 1);
      upper.static_children.push_back(add_node(std::move(lower)));
      nodes_[child] = std::move(upper);
    }
    text.remove_prefix(common);
    parent = child;
  }
  return parent;
}

std::uint32_t PathTree::find_static_child(const Node& node, char first_byte) const noexcept {
  const std::size_t at = node.child_first_bytes.find(first_byte);
  return at == std::string::npos ? kNone : node.static_children[at];
}

std::optional<std::uint32_t> PathTree::match(std::string_view path, std::vector<PathParam>& params) const {
  params.clear();
  if (nodes_.empty()) return std::nullopt;
  const std::uint32_t found = match_from(0, path, 0, params);
  if (found == kNone) {
    params.clear();
    return std::nullopt;
  }
  return nodes_[found].value;
}

// Matches the rest of `path`, from `position`, against the static node `node_index` and what hangs below it;
// returns the node of the route found, or kNone. On failure it may leave captures behind for the caller
// to drop. Static text is followed in a loop; only a node with a parameter or catch-all to fall back on
// recurses, so that the fallback can be tried once the static way fails.
std::uint32_t PathTree::match_from(std::uint32_t node_index, std::string_view path, std::size_t position,
                                   std::vector<PathParam>& params) const {
  while (true) {
    const Node& node = nodes_[node_index];
    if (!path.substr(position).starts_with(node.text)) return kNone;
    position += node.text.size();
    // Parameters and catch-alls never match an empty rest, so a path used up ends here or nowhere.
    if (position == path.size()) return node.route_pattern != kNone ? node_index : kNone;

    const std::uint32_t static_child = find_static_child(node, path[position]);
    if (node.param_child == kNone && node.catch_all_child == kNone) {
      if (static_child == kNone) return kNone;
      node_index = static_child;
      continue;
    }
    if (static_child != kNone) {
      const std::size_t captured = params.size();
      if (const std::uint32_t found = match_from(static_child, path, position, params); found != kNone) return found;
      params.resize(captured);
    }
    if (node.param_child != kNone) {
      const std::size_t segment_end = std::min(path.find('/', position), path.size());
      if (segment_end > position) {
        const Node& param = nodes_[node.param_child];
        const std::size_t captured = params.size();
        params.push_back({param.name, path.substr(position, segment_end - position)});
        if (segment_end == path.size()) {
          if (param.route_pattern != kNone) return node.param_child;
        } else if (const std::uint32_t after = find_static_child(param, '/'); after != kNone) {
          if (node.catch_all_child == kNone) {
            node_index = after;
            position = segment_end;
            continue;
          }
          if (const std::uint32_t found = match_from(after, path, segment_end, params); found != kNone) return found;
        }
        params.resize(captured);
      }
    }
    if (node.catch_all_child != kNone) {
      params.push_back({nodes_[node.catch_all_child].name, path.substr(position)});
      return node.catch_all_child;
    }
    return kNone;
  }
}

}  // namespace spindle::http::detail
