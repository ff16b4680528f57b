#pragma once
// A small CRUD API over an in-memory map: the routes, the validation, and the application's own error
// type. main.cpp serves it; examples/testing tests it in process.
//
//   GET    /todos?limit=&offset=   {"todos": [...], "total": N}
//   POST   /todos                  {"title": "...", "done": false} -> 201 + Location
//   GET    /todos/{id}             200 or 404
//   PUT    /todos/{id}             replace: 200 or 404
//   DELETE /todos/{id}             204 or 404

#include <spindle/http.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace todos {

using namespace spindle::http;

struct Todo {
  std::int64_t id = 0;
  std::string title;
  bool done = false;
};
BOOST_DESCRIBE_STRUCT(Todo, (), (id, title, done))

/// What a client sends to create or replace one: `done` may be left out.
struct TodoInput {
  std::string title;
  std::optional<bool> done;
};
BOOST_DESCRIBE_STRUCT(TodoInput, (), (title, done))

struct Page {
  std::optional<int> limit;
  std::optional<int> offset;
};
BOOST_DESCRIBE_STRUCT(Page, (), (limit, offset))

struct TodoList {
  std::vector<Todo> todos;
  std::size_t total = 0;
};
BOOST_DESCRIBE_STRUCT(TodoList, (), (todos, total))

/// The application's errors; IntoResponse below turns each into a status and {"error", "field"}.
struct AppError {
  Status status;
  std::string message;
  std::string field;

  static AppError not_found(std::int64_t id) { return {Status::not_found, "no todo " + std::to_string(id), ""}; }
  static AppError invalid(std::string field, std::string message) {
    return {Status::unprocessable_entity, std::move(message), std::move(field)};
  }
};

/// The store: handlers never wait while holding the lock, so a plain mutex is right here.
class Store {
 public:
  Store() = default;
  // Moved once, into the router's state, before any request: the mutex need not (and cannot) move.
  Store(Store&& other) noexcept : todos_(std::move(other.todos_)), next_id_(other.next_id_) {}

  Todo add(std::string title, bool done) {
    std::lock_guard lock{mutex_};
    Todo todo{next_id_++, std::move(title), done};
    todos_.emplace(todo.id, todo);
    return todo;
  }
  std::optional<Todo> find(std::int64_t id) const {
    std::lock_guard lock{mutex_};
    auto it = todos_.find(id);
    if (it == todos_.end()) return std::nullopt;
    return it->second;
  }
  bool replace(const Todo& todo) {
    std::lock_guard lock{mutex_};
    auto it = todos_.find(todo.id);
    if (it == todos_.end()) return false;
    it->second = todo;
    return true;
  }
  bool remove(std::int64_t id) {
    std::lock_guard lock{mutex_};
    return todos_.erase(id) == 1;
  }
  TodoList page(std::size_t limit, std::size_t offset) const {
    std::lock_guard lock{mutex_};
    TodoList list{{}, todos_.size()};
    auto it = todos_.begin();
    for (std::size_t skipped = 0; skipped < offset && it != todos_.end(); ++skipped) ++it;
    for (; it != todos_.end() && list.todos.size() < limit; ++it) list.todos.push_back(it->second);
    return list;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::int64_t, Todo> todos_;
  std::int64_t next_id_ = 1;
};

/// The title after trimming, or why it is not acceptable.
inline spindle::Result<std::string, AppError> valid_title(std::string_view title) {
  while (!title.empty() && (title.front() == ' ' || title.front() == '\t')) title.remove_prefix(1);
  while (!title.empty() && (title.back() == ' ' || title.back() == '\t')) title.remove_suffix(1);
  if (title.empty()) return spindle::Err{AppError::invalid("title", "must not be empty")};
  if (title.size() > 200) return spindle::Err{AppError::invalid("title", "must be at most 200 bytes")};
  return std::string{title};
}

inline spindle::Result<Json<TodoList>, AppError> list(State<Store> store, Query<Page> page) {
  const int limit = page->limit.value_or(50);
  const int offset = page->offset.value_or(0);
  if (limit < 1 || limit > 500) return spindle::Err{AppError::invalid("limit", "must be between 1 and 500")};
  if (offset < 0) return spindle::Err{AppError::invalid("offset", "must not be negative")};
  return Json{store->page(static_cast<std::size_t>(limit), static_cast<std::size_t>(offset))};
}

inline spindle::Result<std::tuple<Status, HeaderMap, Json<Todo>>, AppError> create(State<Store> store,
                                                                                   Json<TodoInput> input) {
  auto title = valid_title(input->title);
  if (!title) return spindle::Err{std::move(title).error()};
  Todo todo = store->add(std::move(*title), input->done.value_or(false));
  HeaderMap headers;
  headers.set("location", "/todos/" + std::to_string(todo.id));
  return std::tuple{Status::created, std::move(headers), Json{std::move(todo)}};
}

inline spindle::Result<Json<Todo>, AppError> show(State<Store> store, Path<std::int64_t> id) {
  if (auto todo = store->find(*id)) return Json{std::move(*todo)};
  return spindle::Err{AppError::not_found(*id)};
}

inline spindle::Result<Json<Todo>, AppError> replace(State<Store> store, Path<std::int64_t> id, Json<TodoInput> input) {
  auto title = valid_title(input->title);
  if (!title) return spindle::Err{std::move(title).error()};
  Todo todo{*id, std::move(*title), input->done.value_or(false)};
  if (!store->replace(todo)) return spindle::Err{AppError::not_found(*id)};
  return Json{std::move(todo)};
}

inline spindle::Result<Status, AppError> remove(State<Store> store, Path<std::int64_t> id) {
  if (!store->remove(*id)) return spindle::Err{AppError::not_found(*id)};
  return Status::no_content;
}

/// The routes, with a fresh store (each test gets its own).
inline Router<> app() {
  return Router<Store>{}
      .route("/todos", get(list).post(create))
      .route("/todos/{id}", get(show).put(replace).del(remove))
      .with_state(Store{});
}

}  // namespace todos

/// How an AppError becomes a response: the same {"error", "field"} shape as the extractors' rejections.
template <>
struct spindle::http::IntoResponse<todos::AppError> {
  static Response into(todos::AppError error) {
    return Rejection{error.status, std::move(error.message), std::move(error.field)}.into_response();
  }
};
