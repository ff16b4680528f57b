#include "spindle/runtime/runtime.hpp"

#include <stdexcept>

#include "runtime_core.hpp"
#include "spindle/runtime/blocking.hpp"

namespace spindle::detail {

Scheduler& scheduler_of(RuntimeCore& core) noexcept { return core; }
void run_until_complete(RuntimeCore& core, TaskHeader& root) { core.run_until_complete(root); }

void add_blocking_pool_metrics(RuntimeMetrics& metrics) noexcept {
  const BlockingPoolStats pool = blocking_pool_stats();
  metrics.blocking_threads = pool.threads;
  metrics.blocking_queue_depth = pool.queued_jobs;
}

}  // namespace spindle::detail

namespace spindle {

Runtime::Runtime(const detail::RuntimeOptions& options)
    : core_(options.flavor == detail::RuntimeOptions::Flavor::multi_thread
                ? detail::make_multi_thread_core(options)
                : detail::make_current_thread_core(options)) {}
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;
Runtime::~Runtime() = default;

std::size_t Runtime::live_tasks() const noexcept { return core_->live_tasks(); }
RuntimeMetrics Runtime::metrics() const noexcept { return core_->metrics(); }
std::vector<TaskSnapshot> Runtime::dump_tasks() { return core_->dump_tasks(); }

std::size_t Runtime::drain(std::chrono::nanoseconds limit) {
  if (detail::current_context() != nullptr)
    throw std::logic_error("spindle::Runtime::drain called from inside a runtime");
  return core_->drain(limit);
}

}  // namespace spindle
